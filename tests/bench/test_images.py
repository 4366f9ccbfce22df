import argparse

import pytest

from lstmkit.bench.images import LAYERS, ImagesConfig, add_images_arguments, image_exponents, run_images, \
    run_images_command


def test_every_layer_runs_and_keeps_the_size():
    cfg = ImagesConfig(sizes=[4, 6, 8], B=2, C=3, N=4, warmup=0, repeats=1)
    rows = run_images(cfg)
    assert {r["layer"] for r in rows} == set(LAYERS)
    assert len(rows) == len(LAYERS) * 3 * 2
    assert all(r["ms"] > 0 and r["ms_per_image"] == pytest.approx(r["ms"] / 2, rel=1e-3) for r in rows)
    assert all(r["ratio_vs_conv"] == 1.0 for r in rows if r["layer"] == "conv3x3")
    exps = image_exponents(rows)
    assert len(exps) == len(LAYERS) * 2 and all(-5 < e["exponent"] < 5 for e in exps)


def test_command_writes_outputs(tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_images_arguments(p)
    args = p.parse_args(["--sizes", "4,8", "--layers", "conv3x3,renet-p2", "--batch", "1", "--channels", "2",
                         "--width", "4", "--warmup", "0", "--repeats", "1", "--out", str(tmp_path)])
    assert run_images_command(args) == 0
    assert {"images.json", "images.csv", "report.md", "images.png"} <= {f.name for f in tmp_path.iterdir()}
    assert "renet-p2" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [({"sizes": [5]}, "even"), ({"layers": ["lstm2d"]}, "subset"),
                                           ({"N": 3}, "N must be even"), ({"modes": ("fast",)}, "modes"),
                                           ({"sizes": []}, "sizes")])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImagesConfig(**kwargs)
