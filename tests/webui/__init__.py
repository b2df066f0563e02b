"""Tests of the webui extension in the real AUTOMATIC1111 1.10.1 and Forge Classic (see
harness.py); run by `make webui-test`, which sets the webuis up first."""
