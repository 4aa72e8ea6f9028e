"""PyTorch reference networks for parity tests of the Rust models.

Written for this project from the papers and the authors' architecture descriptions, with
module and attribute names chosen so that ``state_dict()`` keys are exactly the authors' keys:

- ``attngan``: AttnGAN (Xu et al. 2018; taoxugit/AttnGAN ``code/model.py``,
  ``code/GlobalAttention.py``): ``G_NET`` and its parts, the DAMSM ``RNN_ENCODER`` and the two
  trainable projections of ``CNN_ENCODER`` (``CNN_ENCODER_PROJ``).
- ``stackgan``: StackGAN (Zhang et al. 2017; hanzhanggit/StackGAN-Pytorch ``code/model.py``):
  ``CA_NET``, ``STAGE1_G``, ``STAGE2_G``.

Differences from the authors' modules are limited to the interface: sizes are constructor
arguments (no global ``cfg``), and the conditioning-augmentation noise ``eps`` (which the
authors draw inside ``forward``) is an explicit ``forward`` argument. Everything else, quirks
included, follows the authors' forward passes.

Only ``tools/make_parity_fixtures.py`` and benchmarks use these; the Rust build and CI never
need torch.
"""
