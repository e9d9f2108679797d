"""Progress bars written to a file or pipe: a few whole ASCII lines, not a carriage-return flood."""

from __future__ import annotations

import io
import time

from fault_fixtures import tiny_recipe, write_yaml

from mmlatent import progress
from mmlatent.cli import main as cli_main
from mmlatent.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_file_gets_one_line_per_interval(monkeypatch):
    monkeypatch.setattr(progress, "FILE_UPDATE_SECONDS", 0.1)
    out = io.StringIO()
    started = time.perf_counter()
    bar = progress_bar(total=300, desc="stage 2 score net", file=out)
    for step in range(300):
        time.sleep(0.002)
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (step + 1):.4g}", refresh=False)
    bar.close()
    elapsed = time.perf_counter() - started
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text and text.isascii() and text.endswith("\n")
    assert 2 <= len(lines) <= elapsed / 0.1 + 2, lines  # at most one line per interval, and the final state
    assert all(line.startswith("stage 2 score net:") for line in lines)
    assert "300/300" in lines[-1] and "loss=" in lines[-1]


def test_a_short_loop_writes_nothing_to_a_file():
    out = io.StringIO()
    for _ in progress_bar(range(20_000), desc="encode train", file=out, leave=False):
        pass
    bar = progress_bar(total=10, desc="short", file=out)
    bar.update(10)
    bar.close()
    assert out.getvalue() == ""


def test_a_terminal_gets_an_ordinary_bar():
    out = Terminal()
    for _ in progress_bar(range(5), desc="stage 1", file=out):
        pass
    assert "\r" in out.getvalue() and "5/5" in out.getvalue()


def test_terminal_only_bars_stay_off_in_a_file():
    out = io.StringIO()
    bar = progress_bar(total=3, file=out, disable=None)  # None: tqdm's "only on a terminal"
    assert bar.disable
    bar.close()
    assert out.getvalue() == ""


def test_training_with_progress_bars_into_a_file_has_no_carriage_returns(gauss_data, tmp_path, capsys):
    recipe = write_yaml(tmp_path / "recipe.yaml", tiny_recipe(gauss_data))
    assert cli_main(["train", str(recipe), "--output", str(tmp_path / "run"), "--no-eval"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert len(err.splitlines()) < 20, err
