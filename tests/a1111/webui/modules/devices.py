"""Device and dtypes (CPU, float32 in the harness)."""

import torch

cpu = torch.device("cpu")
device = cpu
dtype = torch.float32
dtype_unet = torch.float32
dtype_vae = torch.float32
unet_needs_upcast = False
