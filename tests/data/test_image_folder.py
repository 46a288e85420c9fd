from __future__ import annotations

import pytest
import torch

from dlx.core.errors import ConfigError, DataError
from dlx.data.image_folder import ImageFolder
from tests.data.formats import write_image_folder


def test_train_and_test_subfolders(tmp_path):
    write_image_folder(tmp_path / "train", {"cat": 4, "dog": 3})
    write_image_folder(tmp_path / "test", {"cat": 2, "dog": 1})
    ds = ImageFolder(root=tmp_path, image_size=8, cache_dir=tmp_path / "cache")
    assert ds.spec.class_names == ("cat", "dog") and ds.spec.input_shape == (3, 8, 8)
    data = ds.load()
    assert data.train.x.shape == (7, 3, 8, 8) and data.train.x.dtype == torch.uint8
    assert sorted(data.train.y.tolist()) == [0, 0, 0, 0, 1, 1, 1]
    # the test folder in a seeded order (its first batches hold every class)
    assert sorted(data.test.y.tolist()) == [0, 0, 1] and data.scale == pytest.approx(1 / 255)
    assert torch.equal(data.test.x[:, 0, 0, 0], (data.test.y * 40).to(torch.uint8))
    # red channel encodes the class (index * 40): labels and pixels stay together
    assert torch.equal(data.train.x[:, 0, 0, 0], (data.train.y * 40).to(torch.uint8))


def test_streamed_folder_reads_the_same_images_as_the_cache(tmp_path):
    write_image_folder(tmp_path / "train", {"cat": 4, "dog": 3})
    write_image_folder(tmp_path / "test", {"cat": 2, "dog": 1})
    cached = ImageFolder(root=tmp_path, image_size=8, cache_dir=tmp_path / "cache").load()
    streamed = ImageFolder(root=tmp_path, image_size=8, in_memory=False).load()
    for name in ("train", "test"):
        a, b = cached.splits()[name], streamed.splits()[name]
        assert torch.equal(a.y, b.y)
        assert torch.equal(a.x, b.take(slice(None)).x)


def test_augmentation_is_seeded_per_sample_and_needs_the_streamed_path(tmp_path):
    from dlx.data.augment import Augment

    x = torch.arange(3 * 8 * 8, dtype=torch.uint8).reshape(3, 8, 8)
    aug = Augment(crop_padding=2, flip=True)
    draws = [aug(x, torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(d.shape == x.shape for d in draws)
    assert torch.equal(draws[3], aug(x, torch.Generator().manual_seed(3)))  # same seed
    assert len({d.flatten().tolist().__repr__() for d in draws}) > 5  # varied
    with pytest.raises(ConfigError, match=r"dataset\.in_memory=false"):
        ImageFolder(root=tmp_path, random_flip=True)


def test_a_file_that_does_not_decode_is_left_out_with_one_warning(tmp_path, caplog):
    write_image_folder(tmp_path / "imgs", {"a": 3, "b": 3})
    (tmp_path / "imgs" / "a" / "zz.png").write_bytes(b"not a png")
    with caplog.at_level("WARNING"):
        data = ImageFolder(root=tmp_path / "imgs", image_size=8, test_size=0.5).load()
    assert len(data.train) + len(data.test) == 6
    assert [r.message for r in caplog.records if "do not decode" in r.message]
    with pytest.raises(DataError, match=r"zz\.png"):
        ImageFolder(root=tmp_path / "imgs", image_size=8, strict=True).load()


def test_flat_folder_is_split_and_resized_to_grey(tmp_path):
    write_image_folder(tmp_path / "imgs", {"a": 6, "b": 4}, size=(12, 10), fmt="jpg")
    data = ImageFolder(root=tmp_path / "imgs", image_size=[5, 6], channels=1, test_size=0.2).load()
    assert (len(data.train), len(data.test)) == (8, 2)
    assert data.train.x.shape[1:] == (1, 5, 6)


def test_cache_round_trip(tmp_path):
    write_image_folder(tmp_path / "imgs", {"a": 3, "b": 3})
    first = ImageFolder(root=tmp_path / "imgs", image_size=8, cache_dir=tmp_path / "c")
    a = first.load()
    second = ImageFolder(root=tmp_path / "imgs", image_size=8, cache_dir=tmp_path / "c")
    b = second.load()
    assert second.cache_hit and torch.equal(a.train.x, b.train.x)
    assert not any((tmp_path / "imgs").rglob("*.pt")), "a cache went into the data root"


@pytest.mark.parametrize("layout", ["no-folder", "empty", "classes-without-images"])
def test_empty_folders_are_refused(tmp_path, layout):
    root = tmp_path / "imgs"
    if layout != "no-folder":
        root.mkdir()
    if layout == "classes-without-images":
        (root / "cat").mkdir()
        (root / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError) as err:
        ImageFolder(root=root).load()
    assert str(root) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_image_names_the_file_and_writes_no_cache(tmp_path):
    write_image_folder(tmp_path / "imgs", {"a": 3, "b": 3})
    (tmp_path / "imgs" / "b" / "0001.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match=r"cannot decode image .*0001.png"):
        ImageFolder(root=tmp_path / "imgs", cache_dir=tmp_path / "cache", strict=True).load()
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_classes_option_selects_folders(tmp_path):
    write_image_folder(tmp_path / "imgs", {"a": 2, "b": 3, "c": 4})
    data = ImageFolder(root=tmp_path / "imgs", image_size=8, test_size=0.5, classes=[2, 0]).load()
    assert data.spec.class_names == ("c", "a")
    labels = sorted(data.train.y.tolist() + data.test.y.tolist())
    assert labels == [0, 0, 0, 0, 1, 1]  # c's 4 images and a's 2, nothing of b


def test_root_is_required():
    with pytest.raises(ConfigError, match=r"dataset\.root"):
        ImageFolder()


# Two flat halves, left A and right B, so every mode and size decodes to known pixels.
A, B = (220, 30, 60), (20, 160, 240)


def _halves(mode: str, size: tuple[int, int]):
    """A picture of halves A | B (width, height = size) in a Pillow mode, as files hold it."""
    import numpy as np
    from PIL import Image

    w, h = size
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[:, : w // 2], rgb[:, w // 2 :] = A, B
    img = Image.fromarray(rgb)
    if mode == "I;16":  # 16-bit grey, as scanners and microscopes write PNGs
        return Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    if mode == "RGBA":  # half transparent: the alpha is dropped, the colours kept
        img = img.convert("RGBA")
        img.putalpha(128)
        return img
    if mode.startswith("P"):  # a palette of the picture's colours
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        if mode == "P+transparency":  # with transparent entries (tRNS bytes)
            img.info["transparency"] = bytes([0, 128, 255, 255])
        return img
    return img.convert(mode)


MODES = {  # file name: (Pillow mode, size): every one in one class folder
    "grey.png": ("L", (16, 12)),
    "rgb.png": ("RGB", (40, 30)),
    "rgba.png": ("RGBA", (8, 8)),
    "palette.png": ("P", (24, 10)),
    "palette_transparent.png": ("P+transparency", (20, 20)),
    "grey16.png": ("I;16", (32, 16)),
    "cmyk.jpg": ("CMYK", (48, 32)),
    "grey_alpha.png": ("LA", (12, 12)),
}


@pytest.mark.parametrize("channels", [3, 1])
def test_every_mode_and_size_in_one_folder_decodes_right_in_memory_and_streamed(tmp_path, channels):
    import warnings

    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for name, (mode, size) in MODES.items():
            _halves(mode, size).save(tmp_path / "imgs" / cls / name, quality=95)
    with Image.open(tmp_path / "imgs" / "a" / "grey16.png") as img:
        assert img.mode == "I;16"  # the file really is 16-bit
    options = dict(root=tmp_path / "imgs", image_size=8, channels=channels, test_size=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning per image either
        cached = ImageFolder(**options, cache_dir=tmp_path / "cache").load()
        streamed = ImageFolder(**options, in_memory=False).load()
    for split in ("train", "test"):
        assert torch.equal(cached.splits()[split].x, streamed.splits()[split].take(slice(None)).x)
    x = torch.cat([cached.train.x, cached.test.x]).int()
    assert x.shape == (16, channels, 8, 8)
    grey = [round((299 * c[0] + 587 * c[1] + 114 * c[2]) / 1000) for c in (A, B)]
    colour = [list(A), list(B)] if channels == 3 else [[grey[0]], [grey[1]]]
    left, right = x[:, :, 4, 1], x[:, :, 4, 6]  # a pixel inside each half
    for i in range(len(x)):
        was_grey = torch.equal(left[i], left[i].roll(1)) and channels == 3
        want = [[g] * 3 for g in grey] if was_grey else colour
        # JPEG (CMYK) is lossy; a grey image shows the halves' luminance, 16-bit scaled
        assert (left[i] - torch.tensor(want[0])).abs().max() <= 6, (i, left[i], want[0])
        assert (right[i] - torch.tensor(want[1])).abs().max() <= 6, (i, right[i], want[1])


def test_a_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    import numpy as np
    from PIL import Image

    from dlx.data.images import decode

    picture = _halves("RGB", (32, 16))  # A on the left, B on the right, lying on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    picture.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    x = decode(tmp_path / "phone.jpg", 3, 16, 16).astype(int)
    assert np.abs(x[:, 2, 8] - np.array(A)).max() <= 8  # A on top
    assert np.abs(x[:, 13, 8] - np.array(B)).max() <= 8  # B below


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_but_looks_the_same(tmp_path):
    import numpy as np
    from PIL import Image

    from dlx.data.images import decode

    big = _halves("RGB", (1600, 1200))
    big.save(tmp_path / "big.jpg", quality=90)
    with Image.open(tmp_path / "big.jpg") as img:
        img.draft(None, (32, 24))
        assert img.size == (200, 150)  # libjpeg's 1/8 scale: what decode reads
    x = decode(tmp_path / "big.jpg", 3, 24, 32).astype(int)
    full = np.asarray(big.resize((32, 24), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    assert np.abs(x - full.astype(int))[:, :, [2, 29]].max() <= 6  # inside each half
