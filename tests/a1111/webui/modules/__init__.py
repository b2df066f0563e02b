"""Harness reproduction of stable-diffusion-webui's ``modules`` package (only the
parts the raiiaf extension touches). Written from the documented interfaces; no
upstream code."""
