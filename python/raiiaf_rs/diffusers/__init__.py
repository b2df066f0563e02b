"""diffusers as a host: a pipeline call that writes a ``.raiiaf`` beside each image, and
the replay of such a file (one image of a batch alone, or the whole batch).

>>> import torch
>>> from diffusers import StableDiffusionPipeline
>>> from raiiaf_rs import diffusers as rd
>>> pipe = StableDiffusionPipeline.from_pretrained("path/to/model")
>>> gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
>>> run = rd.generate(pipe, "out/cat.png", prompt="a cat", num_images_per_prompt=2,
...                   num_inference_steps=20, generator=gens)
>>> run.saved[1].sidecar                        # out/cat-1.raiiaf, beside out/cat-1.png
>>> again = rd.replay(run.saved[1].sidecar, pipe)   # that image alone, same pixels
>>> again.differences                           # pipeline/scheduler/model/environment

What a bit-exact rerun needs, and so what :func:`generate` records (measured with
diffusers 0.35 and 0.42, tests/diffusers):

- the initial noise, drawn here exactly as the pipeline draws it (its own
  ``randn_tensor`` with the call's generators) and passed in as ``latents``: stored as
  ``initial_noise``; Euler (and every scheduler that draws nothing later) needs no more;
- each batch item's ``torch.Generator`` state right after that draw: ancestral
  schedulers (Euler a, DDPM, LCM...) draw again at every step, and the stored noise alone
  gives another image. A call without ``generator`` gets one CPU generator per image
  seeded from a fresh random seed (recorded), so that each image can be rerun;
- DPM++ SDE (``DPMSolverSDEScheduler``) ignores ``generator``: its Brownian tree is seeded
  from ``noise_sampler_seed`` or else from the *global* RNG. When the scheduler has no
  seed, each image gets its own (its generator's ``initial_seed()``) and is rerun alone;
  a scheduler configured with one int seed draws one tree for the whole batch, and the
  file says that its image reruns bit for bit only with its whole batch;
- img2img: the VAE encode draws ``latent_dist.sample(generator[i])`` before the noise: the
  encoded latents are stored (``initial_noise_input_latent``) with the noise and the
  states after the noise, and replay starts from them (no encode, no input image needed).

One image of a batch replays as a batch of copies of itself (its prompt, noise and RNG state
in every slot): CPU kernels give other last bits at another batch size (measured at batch
size 1: floats ~2e-6 off, about 0.01 % of 8-bit values off by one), so copies keep the
shapes of the run that made it and the image comes out bit for bit (``alone=True`` trades
that for speed). :func:`replay_batch` reruns the batch as it ran. Replay reports every
difference of pipeline, scheduler, model and environment first, as a typed list
(:func:`differences`) and as warnings; it never silently runs something else.

Files of the other hosts (issue 22): :func:`replay` runs a one-pass txt2img file written
by ComfyUI or the webui with its stored noise as ``latents``, its prompt, steps, CFG and
size, and the diffusers scheduler of its sampler (``raiiaf_rs.replay``'s name tables; the
pipeline's own, listed, when there is none). It is close, not the same image: the
differences (prompt parsing, sampler implementation, sigmas...) come back and are warned
(:class:`raiiaf_rs.replay.Difference`, the one type every host uses). A latent shape the
pipeline does not make at the stored size is refused with the shape hint.

Supported: diffusers 0.35 to 0.42 (tests/diffusers, ``make diffusers-test``), txt2img and
img2img pipelines of the Stable Diffusion kind (SD 1.x/2.x, SDXL); others (inpaint...)
are refused before anything runs.

Not thread-safe for one pipeline object: a call wraps the pipeline's ``prepare_latents``
(and, for img2img, its scheduler's ``add_noise``) on the instance for its duration.
"""

from raiiaf_rs.diffusers._common import APP, Difference, Replay, Run, Saved, model_entries
from raiiaf_rs.diffusers.capture import generate
from raiiaf_rs.diffusers.replay import differences, replay, replay_batch

__all__ = [
    "APP",
    "Difference",
    "Replay",
    "Run",
    "Saved",
    "differences",
    "generate",
    "model_entries",
    "replay",
    "replay_batch",
]
