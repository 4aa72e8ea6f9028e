"""Writes the broken checkpoints the import tests must refuse, into tests/fixtures/pytorch/bad/.

Derived from the parity fixture `attngan_text_encoder.pth` (run tools/make_parity_fixtures.py
first); regenerating needs torch, the tests do not:

    python3 tools/make_import_error_fixtures.py

- text_encoder_renamed.pth    one tensor renamed (rnn.weight_hh_l0 -> rnn.weight_hh_l1)
- text_encoder_misshaped.pth  rnn.bias_ih_l0 one value short
- text_encoder_truncated.pth  the legacy-format file cut off half way
- text_encoder_payload.pth    a state dict with an extra entry whose unpickling would call
                              os.system (a reader that executes pickles would create the file
                              /tmp/t2i-import-payload-ran); zip container
- payload_legacy.pth          the same in the legacy zip-less container
"""

import io
import os
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "pytorch"
OUT = FIXTURES / "bad"


class Payload:
    """Unpickling this object runs a shell command: what a hostile checkpoint looks like."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/t2i-import-payload-ran",))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    state = torch.load(FIXTURES / "attngan_text_encoder.pth", weights_only=True)

    renamed = {("rnn.weight_hh_l1" if k == "rnn.weight_hh_l0" else k): v for k, v in state.items()}
    torch.save(renamed, OUT / "text_encoder_renamed.pth")

    misshaped = dict(state)
    misshaped["rnn.bias_ih_l0"] = state["rnn.bias_ih_l0"][:-1].clone()
    torch.save(misshaped, OUT / "text_encoder_misshaped.pth")

    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    (OUT / "text_encoder_truncated.pth").write_bytes(data[: len(data) // 2])

    hostile = dict(state)
    hostile["payload"] = Payload()
    torch.save(hostile, OUT / "text_encoder_payload.pth")
    torch.save(hostile, OUT / "payload_legacy.pth", _use_new_zipfile_serialization=False)

    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
