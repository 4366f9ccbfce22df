import re

import numpy as np
import pytest

from lstmkit.data.captions import CaptionVocab, caption_scenes, load_flickr8k, read_caption_file, scene_captions
from lstmkit.data.images import load_glyphs

G = 16


def _holds(caption: str, placed) -> bool:
    """Check a caption against the placements from geometry alone (not from the grammar's code)."""
    by_digit = lambda d: [p for p in placed if p.digit == int(d)]  # noqa: E731
    left_of = lambda a, b: a.left + G <= b.left  # noqa: E731
    above = lambda a, b: a.top + G <= b.top  # noqa: E731
    pair = lambda x, y, rel: any(rel(a, b) for a in by_digit(x) for b in by_digit(y) if a is not b)  # noqa: E731
    def row3(m, reverse: bool) -> bool:
        digits = [int(d) for d in m.groups()][::-1 if reverse else 1]
        row = sorted(placed, key=lambda p: p.left)
        return len(placed) == 3 and [p.digit for p in row] == digits and all(left_of(a, b) for a, b in zip(row, row[1:]))

    rules = [
        (r"(?:a single|just one|one|the digit) (\d)(?: on its own| alone)?", lambda m: len(placed) == 1
         and placed[0].digit == int(m[1])),
        (r"a (\d) (?:to the )?left of a (\d)", lambda m: len(placed) == 2 and pair(m[1], m[2], left_of)),
        (r"a (\d) to the right of a (\d)", lambda m: len(placed) == 2 and pair(m[2], m[1], left_of)),
        (r"a (\d) and a (\d) from left to right", lambda m: len(placed) == 2 and pair(m[1], m[2], left_of)),
        (r"a (\d) (?:above|on top of) a (\d)", lambda m: len(placed) == 2 and pair(m[1], m[2], above)),
        (r"a (\d) below a (\d)", lambda m: len(placed) == 2 and pair(m[2], m[1], above)),
        (r"a (\d) and a (\d) from top to bottom", lambda m: len(placed) == 2 and pair(m[1], m[2], above)),
        (r"a (\d) and a (\d) and a (\d) from left to right", lambda m: row3(m, False)),
        (r"a (\d) , a (\d) and a (\d) from left to right", lambda m: row3(m, False)),
        (r"a (\d) and a (\d) and a (\d) from right to left", lambda m: row3(m, True)),
        (r"the digits (\d) (\d) (\d) in a row", lambda m: row3(m, False)),
    ]
    for pattern, check in rules:
        m = re.fullmatch(pattern, caption)
        if m is not None:
            return check(m)
    raise AssertionError(f"caption outside the grammar: {caption!r}")


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_reference_is_true_of_its_scene(split):
    scenes = caption_scenes(120, seed=3, split=split)
    glyphs = load_glyphs(split, G)
    assert scenes.images.shape == (120, 1, 40, 56) and scenes.images.dtype == np.float32
    kinds = set()
    for image, refs, (kind, placed) in zip(scenes.images, scenes.captions, scenes.layouts):
        kinds.add(kind)
        assert len(refs) == 4 and len(set(refs)) == 4
        for ref in refs:
            assert _holds(ref, placed), (ref, placed)
        # the picture is exactly the placed glyphs of this split, nothing else
        canvas = np.zeros((40, 56), np.float32)
        for p in placed:
            assert glyphs.labels[p.glyph] == p.digit
            np.maximum(canvas[p.top:p.top + G, p.left:p.left + G], glyphs.images[p.glyph],
                       out=canvas[p.top:p.top + G, p.left:p.left + G])
        np.testing.assert_array_equal(image[0], canvas)
    assert kinds == {"single", "row2", "column2", "row3"}


def test_a_wrong_caption_is_caught_by_the_checker():
    scenes = caption_scenes(40, seed=0)
    kind, placed = next(lay for lay in scenes.layouts if lay[0] == "row2")
    a, b = placed[0].digit, placed[1].digit
    assert _holds(f"a {a} to the left of a {b}", placed)
    if a != b:
        assert not _holds(f"a {b} to the left of a {a}", placed)
    assert not _holds(f"a {a} above a {b}", placed)


def test_scenes_are_reproducible_and_respect_max_digits():
    a, b = caption_scenes(20, seed=5), caption_scenes(20, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions
    assert not np.array_equal(a.images, caption_scenes(20, seed=6).images)
    two = caption_scenes(50, seed=1, max_digits=2, canvas=(32, 40))
    assert {k for k, _ in two.layouts} <= {"single", "row2", "column2"}
    assert two.images.shape == (50, 1, 32, 40)


def test_scene_errors_name_the_argument():
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        caption_scenes(0)
    with pytest.raises(ValueError, match="max_digits must be 1, 2 or 3"):
        caption_scenes(5, max_digits=4)
    with pytest.raises(ValueError, match="canvas 20x40 is too small.*at least 32x48"):
        caption_scenes(5, canvas=(20, 40))
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        caption_scenes(5, split="val")
    with pytest.raises(ValueError, match="layout 'row2' has 2 digit"):
        scene_captions("row2", [1])
    with pytest.raises(ValueError, match="kind must be one of single, row2, column2, row3"):
        scene_captions("diagonal", [1, 2])


# ------------------------------------------------------------------------------ vocabulary


def test_vocab_specials_unknown_words_and_round_trip():
    vocab = CaptionVocab.fit([["a 3 above a 7", "a 7 below a 3"], ["a single 5"]])
    assert vocab.tokens[:4] == ("<pad>", "<start>", "<end>", "<unk>")
    assert vocab.tokens[4] == "a"  # most frequent first
    ids = vocab.encode("A 3 above the zebra")  # "the", "zebra" unseen; case folded
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id
    assert vocab.decode(ids) == "a 3 above <unk> <unk>"
    assert list(ids).count(vocab.unk_id) == 2
    assert vocab.decode([vocab.start_id, *ids[1:3], vocab.end_id, 5, 6]) == "a 3"  # stops at <end>
    assert CaptionVocab.from_dict(vocab.to_dict()) == vocab
    assert CaptionVocab.fit(["a b b", "b c"], min_freq=2).tokens == ("<pad>", "<start>", "<end>", "<unk>", "b")


def test_vocab_errors():
    vocab = CaptionVocab.fit(["a 3"])
    with pytest.raises(ValueError, match="caption has no words"):
        vocab.encode("   ")
    with pytest.raises(ValueError, match="token id 99 is out of range"):
        vocab.decode([99])
    with pytest.raises(ValueError, match="no word occurs min_freq=3"):
        CaptionVocab.fit(["a b"], min_freq=3)
    with pytest.raises(ValueError, match="must start with"):
        CaptionVocab(("<pad>", "<unk>", "a"))
    with pytest.raises(TypeError, match=r"captions\[1\] must be a str or a non-empty list"):
        CaptionVocab.fit(["a b", []])


# -------------------------------------------------------------------------------- flickr8k


def _jpg(path, color, size=(20, 12)):
    from PIL import Image

    Image.new("RGB", size, color).save(path)


@pytest.fixture
def flickr(tmp_path):
    images = tmp_path / "Flicker8k_Dataset"
    images.mkdir()
    for name, color in (("a.jpg", (255, 0, 0)), ("b.jpg", (0, 255, 0)), ("c.jpg", (0, 0, 255))):
        _jpg(images / name, color)
    (tmp_path / "Flickr8k.token.txt").write_text(
        "a.jpg#0\tA red square .\na.jpg#1\tSomething red\n\nb.jpg#0\tA green square .\nc.jpg#0\tA blue one .\n"
        "c.jpg#1\tBlue , blue !\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("a.jpg\nc.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("b.jpg\n")
    return tmp_path


def test_flickr8k_layout_loads_images_captions_and_splits(flickr):
    data = load_flickr8k(flickr, size=(8, 10))
    assert data.names == ["a.jpg", "b.jpg", "c.jpg"]
    assert data.images.shape == (3, 3, 8, 10) and data.images.dtype == np.float32
    np.testing.assert_allclose(data.images[0].mean(axis=(1, 2)), [1, 0, 0], atol=0.02)  # red, channels first
    assert data.captions[0] == ["A red square .", "Something red"] and data.captions[2][1] == "Blue , blue !"
    train = load_flickr8k(flickr, "train", size=(8, 10))
    assert train.names == ["a.jpg", "c.jpg"] and len(train.captions) == 2
    assert load_flickr8k(flickr, "test", size=(8, 10), channels=1).images.shape == (1, 1, 8, 10)
    assert load_flickr8k(flickr, limit=1, size=(8, 10)).names == ["a.jpg"]
    vocab = CaptionVocab.fit(train.captions)
    assert vocab.decode(vocab.encode(data.captions[1][0])) == "a <unk> square ."  # "green" is test-only


def test_flickr8k_errors_name_file_and_line(flickr):
    token = flickr / "Flickr8k.token.txt"
    token.write_text("\n  \n")
    with pytest.raises(ValueError, match="empty captions file"):
        load_flickr8k(flickr)
    token.write_text("a.jpg#0\tA red square .\na.jpg#1 no tab here\n")
    with pytest.raises(ValueError, match=r"Flickr8k.token.txt, line 2: no tab"):
        read_caption_file(token)
    token.write_text("a.jpg#0\t   \n")
    with pytest.raises(ValueError, match=r"line 1: empty caption for a.jpg"):
        load_flickr8k(flickr)
    token.write_text("a.jpg#0\tred\nmissing.jpg#0\tnothing here\n")
    with pytest.raises(FileNotFoundError, match=r"captions for missing.jpg, but .*missing.jpg does not exist"):
        load_flickr8k(flickr)
    (flickr / "Flicker8k_Dataset" / "notes.jpg").write_text("not an image")
    token.write_text("notes.jpg#0\ta caption\n")
    with pytest.raises(ValueError, match=r"notes.jpg is not a readable image file"):
        load_flickr8k(flickr)
    token.unlink()
    with pytest.raises(FileNotFoundError, match="has no captions file: looked for Flickr8k.token.txt"):
        load_flickr8k(flickr)


def test_flickr8k_split_file_naming_an_uncaptioned_image_is_an_error(flickr):
    (flickr / "Flickr_8k.devImages.txt").write_text("a.jpg\nzzz.jpg\n")
    with pytest.raises(ValueError, match=r"lists 1 image\(s\) without captions.*'zzz.jpg'"):
        load_flickr8k(flickr, "dev")
    with pytest.raises(ValueError, match="split must be one of all, train, dev, test"):
        load_flickr8k(flickr, "val")
