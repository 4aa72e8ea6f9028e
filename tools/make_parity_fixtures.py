#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures of the Rust AttnGAN / StackGAN / DAMSM importers.

Rerun with ``python3 tools/make_parity_fixtures.py`` (from the repository root; needs torch,
numpy and safetensors). The output is committed, so CI and the Rust tests never need torch.

Every network is one of ``tools/pytorch_reference`` (the authors' architectures and state-dict
key names, with the CA noise ``eps`` as an explicit input), built at a TINY width. All
parameters and all batch-norm buffers are randomised (affine weight in [0.5, 1.5], bias and
``num_batches_tracked`` non-zero), then fitted to the fixture inputs in the spirit of LSUV init:
each conv / linear weight is rescaled so its output has a standard deviation near 1, and each
batch norm gets running statistics near its input's (mean plus noise of 0.2 std, variance times
a random factor in [0.5, 1.5]), so eval-mode batch norm is not trivial, no ReLU channel dies and
the tanh images are not saturated. The outputs are computed in ``eval()`` under ``no_grad``. Everything is float32; ids and lengths are int64.

Written into ``tests/fixtures/pytorch/``:

``attngan_netG.pth`` (LEGACY, zip-less ``torch.save`` format, as the authors' released files)
    ``G_NET(ngf=4, text_dim=8, condition_dim=6, z_dim=8, r_num=2, branch_num=3)``, a plain
    ``state_dict()`` (batch-norm ``num_batches_tracked`` included).
``attngan_netG.io.safetensors``
    inputs ``z`` [2,8], ``eps`` [2,6] (CA's draw), ``sent_emb`` [2,8], ``words_embs`` [2,8,7]
    (non-zero at padding positions too), ``cap_lens`` int64 [2] = [7, 4]; the mask is
    ``word index >= cap_len`` ([2,7], true at padding), applied with the authors'
    ``mask.repeat(queryL, 1)`` order: region q of sample b gets the mask of sample
    ``(b * queryL + q) % 2`` = ``q % 2`` (queryL is even), so sample 1 attends to its padding
    words at even regions and sample 0 loses words 4..6 at odd regions.
    outputs ``fake_imgs.0`` [2,3,64,64], ``fake_imgs.1`` [2,3,128,128], ``fake_imgs.2``
    [2,3,256,256], ``att_maps.0`` [2,7,64,64] (h_net2's attention over the 64x64 stage-1
    features), ``att_maps.1`` [2,7,128,128] (h_net3, over the 128x128 features), ``mu`` [2,6],
    ``logvar`` [2,6].
``attngan_text_encoder.pth`` (zip format)
    ``RNN_ENCODER(ntoken=12, ninput=6, nhidden=8)``: embedding + bidirectional LSTM, 4 units
    per direction.
``attngan_text_encoder.io.safetensors``
    inputs ``captions`` int64 [2,7] (ids 1..11, zeros past the length: "this bird is red with
    black wings" and "a small yellow bird" in ``captions.pickle``'s vocabulary), ``cap_lens``
    int64 [2] = [7, 4] (descending, as the authors sort); outputs ``words_emb`` [2,8,7] (zero
    past each length) and ``sent_emb`` [2,8] (forward final state, then backward).
``attngan_image_encoder.pth`` (zip format)
    ``CNN_ENCODER_PROJ(nef=8)`` (``emb_features.weight`` [8,768,1,1], ``emb_cnn_code.weight``
    [8,2048], ``emb_cnn_code.bias`` [8]) plus decoys under torchvision Inception-v3 names, as
    the real file also holds the frozen Inception: ``Conv2d_1a_3x3.conv.weight`` [2,3,3,3],
    ``Mixed_7c.branch_pool.bn.running_mean`` [2], ``Mixed_7c.branch_pool.bn.num_batches_tracked``
    (int64 scalar). An importer must skip them.
``attngan_image_encoder.io.safetensors``
    inputs ``features`` [2,768,5,5], ``cnn_code_in`` [2,2048]; outputs ``features_out``
    [2,8,5,5], ``cnn_code`` [2,8].
``captions.pickle``
    what AttnGAN's ``datasets.py`` writes (pickle protocol 2): ``[train_captions,
    test_captions, ixtoword, wordtoix]``, captions as lists of lists of ints, 12 words with
    index 0 = ``'<end>'``.
``stackgan_stage1_netG.pth`` (LEGACY format)
    ``STAGE1_G(gf_dim=4, t_dim=8, c_dim=6, z_dim=8)`` (4x4 map of 32 channels).
``stackgan_stage1_netG.io.safetensors``
    inputs ``text_embedding`` [2,8], ``noise`` [2,8], ``eps`` [2,6]; outputs ``fake_img``
    [2,3,64,64], ``mu`` [2,6], ``logvar`` [2,6].
``stackgan_stage2_netG.pth`` (zip format)
    ``STAGE2_G(gf_dim=4, t_dim=8, c_dim=6, z_dim=8, r_num=2)`` holding its Stage-I
    (gf_dim 4) under ``STAGE1_G.``.
``stackgan_stage2_netG.io.safetensors``
    inputs ``text_embedding`` [2,8], ``noise`` [2,8], ``eps1`` [2,6] (Stage-I's CA draw),
    ``eps2`` [2,6] (Stage-II's); outputs ``stage1_img`` [2,3,64,64], ``fake_img``
    [2,3,256,256], ``mu`` [2,6], ``logvar`` [2,6] (Stage-II's CA).
``KEYS.txt``
    every state dict's keys, dtypes and shapes, in file order.

The script reloads every ``.pth`` into a freshly built network and checks that it reproduces
the saved outputs exactly.
"""

import io
import os
import pickle
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

sys.dont_write_bytecode = True  # no __pycache__ in tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import attngan, stackgan  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "pytorch")
SEED = 20240601
B, T = 2, 7
CAP_LENS = [7, 4]

# captions.pickle vocabulary: index 0 is '<end>', as AttnGAN's build_dictionary.
WORDS = ["<end>", "this", "bird", "is", "red", "with", "a", "small", "beak", "wings",
         "black", "yellow"]
WORDTOIX = {w: i for i, w in enumerate(WORDS)}


def ids(sentence):
    return [WORDTOIX[w] for w in sentence.split()]


CAPTIONS = [ids("this bird is red with black wings"), ids("a small yellow bird")]


# ---------------------------------------------------------------------------------------------
# Randomisation


def randomise(model, gen):
    """Fills every parameter and buffer of `model` with random values; returns the touched keys."""
    touched = set()
    with torch.no_grad():
        for prefix, mod in model.named_modules():
            p = prefix + "." if prefix else ""
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) / fan_in**0.5)
                touched.add(p + "weight")
                if mod.bias is not None:
                    mod.bias.copy_(torch.rand(mod.bias.shape, generator=gen) * 0.4 - 0.2)
                    touched.add(p + "bias")
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = mod.num_features
                mod.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                mod.num_batches_tracked.fill_(int(torch.randint(100, 10000, (1,), generator=gen)))
                touched.update(p + k for k in ("weight", "bias", "running_mean", "running_var",
                                               "num_batches_tracked"))
            elif isinstance(mod, nn.Embedding):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen))
                touched.add(p + "weight")
            elif isinstance(mod, (nn.LSTM, nn.GRU)):
                for name, tensor in mod.named_parameters():
                    tensor.copy_(torch.rand(tensor.shape, generator=gen) * 1.2 - 0.6)
                    touched.add(p + name)
    keys = set(model.state_dict().keys())
    assert touched == keys, f"not randomised: {sorted(keys - touched)}"


def calibrate(model, run, gen, passes=2):
    """Data-dependent scales on the fixture inputs, in the spirit of LSUV init.

    Each conv / linear weight is rescaled so its output has std ~1, and each batch norm gets
    running statistics near those of its actual input (mean plus noise of 0.2 std, variance
    times a factor in [0.5, 1.5]), so eval-mode batch norm is neither trivial nor killing whole
    ReLU channels. `run()` runs the model on the fixture inputs; two passes let modules
    registered out of forward order settle.
    """
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d))]
    for _ in range(passes):
        for layer in layers:
            seen = []
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
            else:
                handle = layer.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach().clone()))
            with torch.no_grad():
                run()
            handle.remove()
            with torch.no_grad():
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    std = float(torch.stack([x.std() for x in seen]).mean())
                    layer.weight.div_(std)
                else:
                    x = torch.cat([s.transpose(0, 1).reshape(s.size(1), -1) for s in seen], 1)
                    n = layer.num_features
                    mean, var = x.mean(1), x.var(1) + 1e-3
                    layer.running_mean.copy_(mean + 0.2 * var.sqrt() * torch.randn(n, generator=gen))
                    layer.running_var.copy_(var * (torch.rand(n, generator=gen) + 0.5))


def check_image(name, img):
    std = float(img.std())
    saturated = float((img.abs() > 0.99).float().mean())
    print(f"  {name}: shape {list(img.shape)} mean {float(img.mean()):+.3f} std {std:.3f} "
          f"|x|>0.99: {100 * saturated:.1f}%")
    assert std > 0.1, f"{name} has too little spread ({std})"
    assert saturated < 0.5, f"{name} is saturated"


# ---------------------------------------------------------------------------------------------
# Writing


def same_state(path, state):
    """Whether the checkpoint at `path` holds exactly `state` (keys, order, dtypes, values)."""
    try:
        old = torch.load(path)
    except Exception:
        return False
    return list(old) == list(state) and all(
        old[k].dtype == v.dtype and old[k].shape == v.shape and torch.equal(old[k], v)
        for k, v in state.items()
    )


def save_pth(state, path, legacy):
    # The legacy format names storages by memory address, so its bytes change from run to run
    # with the same tensors: an existing file with the same contents is kept (reruns leave git
    # clean).
    if not (legacy and same_state(path, state)):
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    with open(path, "rb") as f:
        magic = f.read(2)
    if legacy:
        assert magic == b"\x80\x02", f"{path} is not a legacy (pickle) file"
    else:
        assert magic == b"PK", f"{path} is not a zip file"


def save_io(tensors, path, description):
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file(tensors, path, metadata={"description": description})


def load_io(path):
    """The tensors of an io file, copied into fresh (aligned) memory: the tensors safetensors
    maps are not 64-byte aligned, and CPU BLAS kernels round differently on unaligned input,
    which would make a bit-exact comparison fail by ~1e-7."""
    return {k: v.clone() for k, v in load_file(path).items()}


def max_diff(a, b):
    return float((a - b).abs().max())


def keys_report(name, state):
    lines = [f"## {name}"]
    for k, v in state.items():
        lines.append(f"{k}\t{str(v.dtype).replace('torch.', '')}\t{list(v.shape)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The fixtures


def padding_mask(cap_lens, width):
    return torch.arange(width).unsqueeze(0) >= torch.as_tensor(cap_lens).unsqueeze(1)


def attngan_generator(gen):
    print("attngan_netG")
    sizes = dict(ngf=4, text_dim=8, condition_dim=6, z_dim=8, r_num=2, branch_num=3)
    net = attngan.G_NET(**sizes)
    randomise(net, gen)
    net.eval()
    inputs = {
        "z": torch.randn(B, 8, generator=gen),
        "eps": torch.randn(B, 6, generator=gen),
        "sent_emb": torch.randn(B, 8, generator=gen),
        "words_embs": torch.randn(B, 8, T, generator=gen),
        "cap_lens": torch.tensor(CAP_LENS, dtype=torch.int64),
    }

    def run(model=net, x=inputs):
        mask = padding_mask(x["cap_lens"], x["words_embs"].size(2))
        return model(x["z"], x["sent_emb"], x["words_embs"], mask, x["eps"])

    calibrate(net, run, gen)
    with torch.no_grad():
        fake_imgs, att_maps, mu, logvar = run()
    outputs = {f"fake_imgs.{i}": img for i, img in enumerate(fake_imgs)}
    outputs.update({f"att_maps.{i}": a for i, a in enumerate(att_maps)})
    outputs.update({"mu": mu, "logvar": logvar})
    # The hidden features h_0 (64 px) and h_1 (128 px) that feed the next stage, so a reader
    # can check each stage on PyTorch's own input: rounding differences that grow through
    # three stages do not then hide or fake a difference in one of them.
    with torch.no_grad():
        mask = padding_mask(inputs["cap_lens"], inputs["words_embs"].size(2))
        c_code, _, _ = net.ca_net(inputs["sent_emb"], inputs["eps"])
        h0 = net.h_net1(inputs["z"], c_code)
        h1, _ = net.h_net2(h0, c_code, inputs["words_embs"], mask)
    outputs.update({"h_code.0": h0, "h_code.1": h1})
    for i, img in enumerate(fake_imgs):
        check_image(f"fake_imgs.{i}", img)
    for i, a in enumerate(att_maps):
        print(f"  att_maps.{i}: shape {list(a.shape)} max weight {float(a.max()):.3f} "
              f"mean max over words {float(a.max(dim=1).values.mean()):.3f}")
        # The authors' mask order: sample 1's padding words (4..6) get weight at even regions.
        flat = a.reshape(B, T, -1)
        assert float(flat[1, 4:, 0::2].min()) > 0 and float(flat[1, 4:, 1::2].max()) == 0
        assert float(flat[0, 4:, 1::2].max()) == 0 and float(flat[0, 4:, 0::2].min()) > 0
    print(f"  mu std {float(mu.std()):.3f}, logvar range [{float(logvar.min()):.3f}, "
          f"{float(logvar.max()):.3f}]")
    # With one caption at a time the mask quirk vanishes: how much it changes the batch output.
    with torch.no_grad():
        for b in range(B):
            alone = {k: v[b : b + 1] for k, v in inputs.items()}
            imgs_alone = run(net, alone)[0]
            print(f"  sample {b} alone vs in the batch (the mask quirk): max |diff| "
                  f"{max_diff(imgs_alone[2][0], fake_imgs[2][b]):.4f} at 256 px")

    state = net.state_dict()
    path = os.path.join(OUT, "attngan_netG.pth")
    save_pth(state, path, legacy=True)
    save_io({**inputs, **outputs}, os.path.join(OUT, "attngan_netG.io.safetensors"),
            "AttnGAN G_NET(ngf=4, text_dim=8, condition_dim=6, z_dim=8, r_num=2, branch_num=3), "
            "eval mode; mask = word index >= cap_len, applied in the authors' "
            "mask.repeat(queryL, 1) order; att_maps.0 [B,T,64,64], att_maps.1 [B,T,128,128]; "
            "h_code.0 [B,ngf,64,64] and h_code.1 [B,ngf,128,128] are the hidden features "
            "h_net1 and h_net2 hand to the next stage")

    def reload_check():
        fresh = attngan.G_NET(**sizes)
        fresh.load_state_dict(torch.load(path), strict=True)
        fresh.eval()
        saved = load_io(os.path.join(OUT, "attngan_netG.io.safetensors"))
        with torch.no_grad():
            imgs, maps, m, lv = run(fresh, saved)
        got = {f"fake_imgs.{i}": x for i, x in enumerate(imgs)}
        got.update({f"att_maps.{i}": x for i, x in enumerate(maps)})
        got.update({"mu": m, "logvar": lv})
        return max(max_diff(got[k], saved[k]) for k in got)

    return {"attngan_netG.pth": state}, reload_check


def attngan_text_encoder(gen):
    print("attngan_text_encoder")
    sizes = dict(ntoken=12, ninput=6, nhidden=8)
    net = attngan.RNN_ENCODER(**sizes)
    randomise(net, gen)
    net.eval()
    captions = torch.zeros(B, T, dtype=torch.int64)
    for b, cap in enumerate(CAPTIONS):
        captions[b, : len(cap)] = torch.tensor(cap)
    cap_lens = torch.tensor([len(c) for c in CAPTIONS], dtype=torch.int64)
    assert cap_lens.tolist() == CAP_LENS
    inputs = {"captions": captions, "cap_lens": cap_lens}
    with torch.no_grad():
        words_emb, sent_emb = net(captions, cap_lens)
    assert list(words_emb.shape) == [B, 8, T] and list(sent_emb.shape) == [B, 8]
    assert float(words_emb[1, :, 4:].abs().max()) == 0.0
    print(f"  words_emb {list(words_emb.shape)} std {float(words_emb.std()):.3f}; "
          f"sent_emb {list(sent_emb.shape)} std {float(sent_emb.std()):.3f}")
    outputs = {"words_emb": words_emb, "sent_emb": sent_emb}
    state = net.state_dict()
    path = os.path.join(OUT, "attngan_text_encoder.pth")
    save_pth(state, path, legacy=False)
    io_path = os.path.join(OUT, "attngan_text_encoder.io.safetensors")
    save_io({**inputs, **outputs}, io_path,
            "AttnGAN RNN_ENCODER(ntoken=12, ninput=6, nhidden=8), bidirectional LSTM, eval mode")

    def reload_check():
        fresh = attngan.RNN_ENCODER(**sizes)
        fresh.load_state_dict(torch.load(path), strict=True)
        fresh.eval()
        saved = load_io(io_path)
        with torch.no_grad():
            w, s = fresh(saved["captions"], saved["cap_lens"])
        return max(max_diff(w, saved["words_emb"]), max_diff(s, saved["sent_emb"]))

    return {"attngan_text_encoder.pth": state}, reload_check


def attngan_image_encoder(gen):
    print("attngan_image_encoder")
    net = attngan.CNN_ENCODER_PROJ(nef=8)
    randomise(net, gen)
    net.eval()
    inputs = {
        # Inception features come out of ReLUs and average pooling: non-negative.
        "features": torch.rand(B, 768, 5, 5, generator=gen) * 2,
        "cnn_code_in": torch.rand(B, 2048, generator=gen),
    }
    with torch.no_grad():
        features_out, cnn_code = net(inputs["features"], inputs["cnn_code_in"])
    outputs = {"features_out": features_out, "cnn_code": cnn_code}
    print(f"  features_out {list(features_out.shape)} std {float(features_out.std()):.3f}; "
          f"cnn_code {list(cnn_code.shape)} std {float(cnn_code.std()):.3f}")
    decoys = OrderedDict([
        ("Conv2d_1a_3x3.conv.weight", torch.randn(2, 3, 3, 3, generator=gen)),
        ("Mixed_7c.branch_pool.bn.running_mean", torch.randn(2, generator=gen)),
        ("Mixed_7c.branch_pool.bn.num_batches_tracked", torch.tensor(123, dtype=torch.int64)),
    ])
    state = OrderedDict(decoys)  # the real file lists Inception first, then the projections
    state.update(net.state_dict())
    path = os.path.join(OUT, "attngan_image_encoder.pth")
    save_pth(state, path, legacy=False)
    io_path = os.path.join(OUT, "attngan_image_encoder.io.safetensors")
    save_io({**inputs, **outputs}, io_path,
            "AttnGAN CNN_ENCODER projections (emb_features, emb_cnn_code), nef=8; the .pth also "
            "holds decoy Inception tensors to skip")

    def reload_check():
        fresh = attngan.CNN_ENCODER_PROJ(nef=8)
        loaded = torch.load(path)
        result = fresh.load_state_dict(loaded, strict=False)
        assert sorted(result.unexpected_keys) == sorted(decoys) and not result.missing_keys
        fresh.eval()
        saved = load_io(io_path)
        with torch.no_grad():
            f, c = fresh(saved["features"], saved["cnn_code_in"])
        return max(max_diff(f, saved["features_out"]), max_diff(c, saved["cnn_code"]))

    return {"attngan_image_encoder.pth": state}, reload_check


def captions_pickle():
    ixtoword = {i: w for i, w in enumerate(WORDS)}
    wordtoix = dict(WORDTOIX)
    train = [CAPTIONS[0], CAPTIONS[1], ids("this bird is small with yellow wings"),
             ids("a black bird with a red beak")]
    test = [ids("this small bird is black"), ids("a red bird with black wings")]
    path = os.path.join(OUT, "captions.pickle")
    with open(path, "wb") as f:
        pickle.dump([train, test, ixtoword, wordtoix], f, protocol=2)
    with open(path, "rb") as f:
        back = pickle.load(f)
    assert back == [train, test, ixtoword, wordtoix]
    print(f"captions.pickle: {len(train)} train, {len(test)} test captions, {len(WORDS)} words")


def stackgan_stage1(gen):
    print("stackgan_stage1_netG")
    sizes = dict(gf_dim=4, t_dim=8, c_dim=6, z_dim=8)
    net = stackgan.STAGE1_G(**sizes)
    randomise(net, gen)
    net.eval()
    inputs = {
        "text_embedding": torch.randn(B, 8, generator=gen),
        "noise": torch.randn(B, 8, generator=gen),
        "eps": torch.randn(B, 6, generator=gen),
    }

    def run(model=net, x=inputs):
        return model(x["text_embedding"], x["noise"], x["eps"])

    calibrate(net, run, gen)
    with torch.no_grad():
        fake_img, mu, logvar = run()
    check_image("fake_img", fake_img)
    outputs = {"fake_img": fake_img, "mu": mu, "logvar": logvar}
    state = net.state_dict()
    path = os.path.join(OUT, "stackgan_stage1_netG.pth")
    save_pth(state, path, legacy=True)
    io_path = os.path.join(OUT, "stackgan_stage1_netG.io.safetensors")
    save_io({**inputs, **outputs}, io_path,
            "StackGAN STAGE1_G(gf_dim=4, t_dim=8, c_dim=6, z_dim=8), eval mode")

    def reload_check():
        fresh = stackgan.STAGE1_G(**sizes)
        fresh.load_state_dict(torch.load(path), strict=True)
        fresh.eval()
        saved = load_io(io_path)
        with torch.no_grad():
            got = dict(zip(["fake_img", "mu", "logvar"], run(fresh, saved)))
        return max(max_diff(got[k], saved[k]) for k in outputs)

    return {"stackgan_stage1_netG.pth": state}, reload_check


def stackgan_stage2(gen):
    print("stackgan_stage2_netG")
    sizes = dict(gf_dim=4, t_dim=8, c_dim=6, z_dim=8, r_num=2, stage1_gf_dim=4)
    net = stackgan.STAGE2_G(**sizes)
    randomise(net, gen)
    net.eval()
    inputs = {
        "text_embedding": torch.randn(B, 8, generator=gen),
        "noise": torch.randn(B, 8, generator=gen),
        "eps1": torch.randn(B, 6, generator=gen),
        "eps2": torch.randn(B, 6, generator=gen),
    }

    def run(model=net, x=inputs):
        return model(x["text_embedding"], x["noise"], x["eps1"], x["eps2"])

    calibrate(net, run, gen)
    with torch.no_grad():
        stage1_img, fake_img, mu, logvar = run()
    check_image("stage1_img", stage1_img)
    check_image("fake_img", fake_img)
    outputs = {"stage1_img": stage1_img, "fake_img": fake_img, "mu": mu, "logvar": logvar}
    state = net.state_dict()
    path = os.path.join(OUT, "stackgan_stage2_netG.pth")
    save_pth(state, path, legacy=False)
    io_path = os.path.join(OUT, "stackgan_stage2_netG.io.safetensors")
    save_io({**inputs, **outputs}, io_path,
            "StackGAN STAGE2_G(gf_dim=4, t_dim=8, c_dim=6, z_dim=8, r_num=2) with its "
            "STAGE1_G(gf_dim=4) under STAGE1_G.; eps1 is Stage-I's CA draw, eps2 Stage-II's; "
            "mu and logvar are Stage-II's; eval mode")

    def reload_check():
        fresh = stackgan.STAGE2_G(**sizes)
        fresh.load_state_dict(torch.load(path), strict=True)
        fresh.eval()
        saved = load_io(io_path)
        with torch.no_grad():
            got = dict(zip(["stage1_img", "fake_img", "mu", "logvar"], run(fresh, saved)))
        return max(max_diff(got[k], saved[k]) for k in outputs)

    return {"stackgan_stage2_netG.pth": state}, reload_check


def main():
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)

    states, checks = {}, {}
    for build in (attngan_generator, attngan_text_encoder, attngan_image_encoder,
                  stackgan_stage1, stackgan_stage2):
        state, check = build(gen)
        states.update(state)
        checks.update({name: check for name in state})
    captions_pickle()

    with open(os.path.join(OUT, "KEYS.txt"), "w") as f:
        f.write("# State-dict keys of the fixture checkpoints: key, dtype, shape (PyTorch layout).\n"
                "# Written by tools/make_parity_fixtures.py.\n\n")
        f.write("\n".join(keys_report(name, state) for name, state in states.items()))

    print("\nreloaded checkpoints vs saved outputs:")
    for name, check in checks.items():
        diff = check()
        print(f"  {name}: max abs diff {diff}")
        assert diff == 0.0, name

    print(f"\nfiles in {os.path.relpath(OUT, ROOT)}:")
    total = 0
    written = sorted(list(states) + [n.replace(".pth", ".io.safetensors") for n in states]
                     + ["captions.pickle", "KEYS.txt"])
    for name in written:
        size = os.path.getsize(os.path.join(OUT, name))
        total += size
        print(f"  {name:42s} {size:>10,d} bytes")
    print(f"  {'total':42s} {total:>10,d} bytes")


if __name__ == "__main__":
    main()
