"""Careless and hostile input, round two (issue 14, part B), through the real command line.

Each test asserts the exit code, the one line on stderr, that nothing was written (no output,
no staging leftovers) and that the user's files are as they were. Where a regression would hang
(a FIFO, ``/dev/zero``), the command runs in a child process with a timeout instead of in-process.

Vocabularies are compared with what TF BERT's own ``tokenization.load_vocab`` made of the same
files (``fixtures/vocab_cases/tf_load_vocab.json``, written by ``fixtures/make_vocab_cases.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import FIXTURES, fixture
from tf2hf.cli import app
from tf2hf.errors import MAX_SHOWN_MESSAGE, Tf2hfError, shown
from tf2hf.output.vocab import infer_lowercase, read_vocab
from tf2hf.sources import sha256
from tf2hf.tfckpt import open_checkpoint

runner = CliRunner()
CASES = FIXTURES / "vocab_cases"
TF_RESULTS = json.loads((CASES / "tf_load_vocab.json").read_text(encoding="utf-8"))
NOT_REGULAR = "not a regular file (reading a pipe or a device could block or never end); put the real file in its place"


def _copy(name: str, to: Path) -> Path:
    shutil.copytree(fixture(name), to)
    for path in to.iterdir():
        path.chmod(0o644)
    return to


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: a file's sha256, a link's target, a FIFO as such."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            seen[key] = "-> " + os.readlink(path)
        elif path.is_fifo():
            seen[key] = "fifo"
        elif path.is_file():
            seen[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[key] = "dir"
    return seen


def _cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed command in a child process: a hang fails the test instead of stopping it."""
    return subprocess.run(
        [sys.executable, "-m", "tf2hf", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )


def _one_error(stderr: str, message: str) -> None:
    """Exactly one line: the message as the CLI shows it (long names elided, see test_shown_…)."""
    assert stderr.splitlines() == [f"error: {shown(message)}"]


@pytest.fixture
def src(tmp_path) -> Path:
    return _copy("example", tmp_path / "src")


@pytest.fixture
def dest(tmp_path) -> Path:
    folder = tmp_path / "dest"
    folder.mkdir()
    return folder


# --- 1. vocabularies as TF BERT read them ------------------------------------------------------


@pytest.mark.parametrize("name", ["trailing_spaces.txt", "crlf.txt", "blank_line.txt", "separators.txt"])
def test_vocab_is_read_as_tf_load_vocab_reads_it(name):
    tf_tokens = [token for token, index in TF_RESULTS[name]]
    assert [index for _, index in TF_RESULTS[name]] == list(range(len(tf_tokens)))  # no repeats here
    assert read_vocab(CASES / name) == tf_tokens


def test_bom_is_removed_where_tf_would_keep_it():
    """The one deliberate difference: TF's token 0 is '\\ufeff[PAD]', which no text produces."""
    tf_tokens = [token for token, _ in TF_RESULTS["bom.txt"]]
    assert tf_tokens[0] == "\ufeff[PAD]"
    assert read_vocab(CASES / "bom.txt") == ["[PAD]", *tf_tokens[1:]]
    assert infer_lowercase(read_vocab(CASES / "bom.txt")) == (True, "the vocabulary has no tokens with capitals")


def test_tf_bert_releases_disagree_on_a_repeated_token():
    """Why a repeat is refused: bert-tensorflow 1.0.4 gives 'again' (line 9) id 7, so every token
    after the repeat is one row lower than google-research/bert's line-number ids."""
    assert dict(TF_RESULTS["duplicate.txt"]) == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hello": 5, "world": 6, "again": 7}


@pytest.mark.parametrize(
    "name, what, lines",
    [("duplicate.txt", "token 'hello'", "6 and 8"), ("two_blank_lines.txt", "an empty line", "6 and 8")],
)
def test_repeated_token_is_refused(src, dest, name, what, lines):
    vocab = CASES / name
    before = vocab.read_bytes()
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--vocab", str(vocab), "--out", str(dest / "out"), "--no-verify"])
    assert result.exit_code == 1
    _one_error(result.stderr, (
        f"{vocab}: {what} appears twice (lines {lines}, after stripping spaces as TF BERT does), and TF BERT "
        "versions give it different ids; remove the repeated line so that every token has one id"
    ))
    assert list(dest.iterdir()) == [] and vocab.read_bytes() == before


def test_careless_vocab_converts_like_the_clean_one(src, dest, tmp_path):
    """BOM, CRLF and trailing spaces on every line: the same tokenizer as from the clean file."""
    transformers = pytest.importorskip("transformers")
    clean = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
    careless = tmp_path / "careless.txt"
    careless.write_bytes(("\ufeff" + "".join(f"{token}  \r\n" for token in clean)).encode("utf-8"))
    before = careless.read_bytes()
    for vocab, out in ((src / "vocab.txt", dest / "clean"), (careless, dest / "careless")):
        result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--vocab", str(vocab), "--out", str(out), "--no-verify"])
        assert result.exit_code == 0, result.output
    assert careless.read_bytes() == before
    assert (dest / "careless" / "vocab.txt").read_bytes() == (dest / "clean" / "vocab.txt").read_bytes()
    loaded = [transformers.AutoTokenizer.from_pretrained(str(dest / name)) for name in ("clean", "careless")]
    assert loaded[0].get_vocab() == loaded[1].get_vocab()
    assert loaded[1]("Hello world")["input_ids"] == loaded[0]("Hello world")["input_ids"]
    assert loaded[1].unk_token_id not in loaded[1]("Hello world")["input_ids"]  # still lower-cased
    assert loaded[1].pad_token == "[PAD]"


# --- 2. batch --------------------------------------------------------------------------------


def _deep_unlistable_folder(parent: Path) -> None:
    """Folders no process can list, root included: their paths are longer than the system allows
    (os.scandir fails with ENAMETOOLONG). Built one level at a time, relative to open folders."""
    fd = os.open(parent, os.O_RDONLY)
    try:
        for level in range(18):
            name = f"d{level:02d}" + "x" * 240
            os.mkdir(name, dir_fd=fd)
            deeper = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = deeper
    finally:
        os.close(fd)


def test_batch_reports_a_folder_it_cannot_read_as_failed(tmp_path):
    zoo = tmp_path / "zoo"
    _copy("example", zoo / "a")
    (zoo / "deep").mkdir()
    _deep_unlistable_folder(zoo / "deep")
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["batch", str(zoo), "--out", str(tmp_path / "out"), "--no-verify", "--report", str(report)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "error: 1 of 2 entries failed (reasons above); fix them and run the same command again"
    data = json.loads(report.read_text())
    assert data["counts"] == {"converted": 1, "skipped": 0, "failed": 1}
    (failed,) = [e for e in data["entries"] if e["status"] == "failed"]
    assert failed["source"].startswith(str(zoo / "deep" / "d00"))
    assert failed["reason"].endswith(
        ": cannot read this folder (File name too long), so its checkpoints were not looked for; "
        "make it readable (or move it out of the zoo) and run again"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_batch_reports_a_folder_without_permission_as_failed(tmp_path):
    zoo = tmp_path / "zoo"
    _copy("example", zoo / "a")
    _copy("example", zoo / "b")
    (zoo / "b").chmod(0)
    try:
        result = runner.invoke(app, ["batch", str(zoo), "--out", str(tmp_path / "out"), "--no-verify"])
    finally:
        (zoo / "b").chmod(0o755)
    assert result.exit_code == 1
    assert f"failed    b: {zoo / 'b'}: cannot read this folder (Permission denied)" in result.stdout


def test_batch_shows_warnings_in_the_plain_display(tmp_path):
    zoo = tmp_path / "zoo"
    _copy("example", zoo / "a")
    (zoo / "a" / "vocab.txt").unlink()
    result = runner.invoke(app, ["batch", str(zoo), "--out", str(tmp_path / "out"), "--no-verify"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # the plain display writes where the summary goes
    assert lines[0].startswith("[1/1] converted a: BertForPreTraining")
    assert lines[1] == f"  warning: {zoo / 'a'}: no vocabulary found beside the checkpoint; no tokenizer written (pass the \"vocab\" key of its --manifest entry)"


def test_batch_shows_warnings_in_the_live_display(tmp_path):
    """stderr on a terminal (a pseudo-terminal here): the rich display prints them too."""
    zoo = tmp_path / "zoo"
    _copy("example", zoo / "a")
    (zoo / "a" / "vocab.txt").unlink()
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tf2hf", "batch", str(zoo), "--out", str(tmp_path / "out"), "--no-verify", "--workers", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower, timeout=300, env={**os.environ, "COLUMNS": "400"},
        )
        os.close(follower)
        follower = -1
        shown_text = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break  # EIO: the child's end is closed and everything was read
            if not chunk:
                break
            shown_text += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    text = shown_text.decode("utf-8", "replace")
    assert "no vocabulary found beside the checkpoint; no tokenizer written" in text
    assert "warning:" in text


def test_batch_out_that_is_a_file_is_one_line_before_any_work(tmp_path):
    zoo = _copy("example", tmp_path / "zoo" / "a").parent
    out = tmp_path / "out.txt"
    out.write_text("mine\n")
    result = runner.invoke(app, ["batch", str(zoo), "--out", str(out), "--no-verify"])
    assert result.exit_code == 1
    _one_error(result.stderr, f"{out}: exists and is not a folder; --out is the folder the outputs go into: choose another --out")
    assert out.read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "zoo"]


def test_batch_report_in_a_missing_folder_is_one_line_before_any_work(tmp_path):
    zoo = _copy("example", tmp_path / "zoo" / "a").parent
    report = tmp_path / "nowhere" / "report.json"
    result = runner.invoke(app, ["batch", str(zoo), "--out", str(tmp_path / "out"), "--no-verify", "--report", str(report)])
    assert result.exit_code == 1
    _one_error(result.stderr, f"{report}: the folder {report.parent} does not exist; create it or choose another --report path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo"]  # nothing converted


# --- 3. slim ---------------------------------------------------------------------------------


def test_slim_refuses_a_tf2_object_based_checkpoint(tmp_path):
    source = _copy("tf2_bert_encoder", tmp_path / "src")
    before = _snapshot(source)
    (tmp_path / "dest").mkdir()
    result = runner.invoke(app, ["slim", str(source), "--out", str(tmp_path / "dest" / "slim")])
    assert result.exit_code == 1
    (index,) = source.glob("*.index")
    _one_error(result.stderr, (
        f"{index}: a TF2 object-based checkpoint (tf.train.Checkpoint: it has _CHECKPOINTABLE_OBJECT_GRAPH), "
        "which slim does not copy: its object graph names the optimizer slots, so without them it no longer "
        "restores; convert it with tf2hf convert directly, or drop the optimizer in TF and save again"
    ))
    assert list((tmp_path / "dest").iterdir()) == [] and _snapshot(source) == before


def test_slim_never_writes_through_a_dangling_checkpoint_link(src, tmp_path):
    out = tmp_path / "slim"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere" / "checkpoint"
    (out / "checkpoint").symlink_to(elsewhere)
    result = runner.invoke(app, ["slim", str(src), "--out", str(out / "model.ckpt-3")])
    assert result.exit_code == 0, result.output
    assert os.readlink(out / "checkpoint") == str(elsewhere) and not elsewhere.parent.exists()
    assert {"model.ckpt-3.data-00000-of-00001", "model.ckpt-3.index"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if ".tf2hf-" in p.name]


def test_slim_force_replaces_a_linked_index_not_its_target(src, tmp_path):
    """The index at --out is a link to another slim's index: the link is replaced, its target
    (the other checkpoint) stays as it was."""
    other = tmp_path / "other" / "model.ckpt-3"
    assert runner.invoke(app, ["slim", str(src), "--out", str(other)]).exit_code == 0
    before = _snapshot(other.parent)
    out = tmp_path / "slim"
    out.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        (out / f"model.ckpt-3{suffix}").symlink_to(other.with_name(other.name + suffix))
    result = runner.invoke(app, ["slim", str(_copy("bert_pretrain", tmp_path / "b")), "--out", str(out / "model.ckpt-3"), "--force"])
    assert result.exit_code == 0, result.output
    assert _snapshot(other.parent) == before
    assert not (out / "model.ckpt-3.index").is_symlink() and not (out / "model.ckpt-3.data-00000-of-00001").is_symlink()


def test_concurrent_slims_to_one_prefix_leave_one_whole_checkpoint(tmp_path):
    """Two sources of different sizes slimmed at once by two processes, again and again, to one
    prefix: the index always describes the data beside it (every tensor's crc32c checks)."""
    sources = [_copy("bert_pretrain", tmp_path / "a"), _copy("bert_slots_zoo", tmp_path / "b")]
    out = tmp_path / "slim" / "model.ckpt-1"
    for _ in range(8):
        runs = [
            subprocess.Popen([sys.executable, "-m", "tf2hf", "slim", str(source), "--out", str(out), "--force"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            for source in sources
        ]
        for run in runs:
            _, stderr = run.communicate(timeout=120)
            assert run.returncode == 0, stderr
        with open_checkpoint(out) as ckpt:
            for name in ckpt.variables:
                ckpt.read(name)
        assert not [p for p in out.parent.iterdir() if ".tf2hf-" in p.name]


# --- 4. pipes and devices --------------------------------------------------------------------


def test_fifo_data_shard_is_an_error_not_a_hang(src, dest):
    shard = src / "model.ckpt-3.data-00000-of-00001"
    shard.unlink()
    os.mkfifo(shard)
    done = _cli("convert", "bert", "--tf", str(src), "--out", str(dest / "out"), timeout=60)
    assert done.returncode == 1
    _one_error(done.stderr, f"{shard}: this data shard is a named pipe (FIFO), {NOT_REGULAR}")
    assert list(dest.iterdir()) == []


def test_dev_zero_linked_as_data_shard_is_an_error_not_a_hang(src, dest):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    shard = src / "model.ckpt-3.data-00000-of-00001"
    shard.unlink()
    shard.symlink_to("/dev/zero")
    done = _cli("convert", "bert", "--tf", str(src), "--out", str(dest / "out"), "--no-verify", timeout=60)
    assert done.returncode == 1
    _one_error(done.stderr, f"{shard}: this data shard is a character device, {NOT_REGULAR}")
    assert list(dest.iterdir()) == []


def test_fifo_data_shard_fails_its_batch_entry_not_the_batch(tmp_path):
    zoo = tmp_path / "zoo"
    _copy("example", zoo / "a")
    shard = zoo / "a" / "model.ckpt-3.data-00000-of-00001"
    shard.unlink()
    os.mkfifo(shard)
    done = _cli("batch", str(zoo), "--out", str(tmp_path / "out"), "--no-verify", timeout=120)
    assert done.returncode == 1
    assert f"failed    a: {shard}: this data shard is a named pipe (FIFO), {NOT_REGULAR}" in done.stdout


@pytest.mark.parametrize("what", ["index", "folder index"])
def test_index_that_is_not_a_file_is_named_as_such(src, dest, what):
    index = src / "model.ckpt-3.index"
    index.unlink()
    if what == "index":
        os.mkfifo(index)
        kind = "a named pipe (FIFO)"
    else:
        index.mkdir()
        kind = "a folder"
    for given in (src, src / "model.ckpt-3", src / "model.ckpt-3.data-00000-of-00001"):
        done = _cli("inspect", str(given), timeout=60)
        assert done.returncode == 1
        _one_error(done.stderr, f"{index}: the index is {kind}, {NOT_REGULAR}")


@pytest.mark.parametrize("option", ["--config", "--vocab"])
def test_fifo_config_or_vocab_is_an_error_not_a_hang(src, dest, tmp_path, option):
    fifo = tmp_path / "side.txt"
    os.mkfifo(fifo)
    done = _cli("convert", "bert", "--tf", str(src), option, str(fifo), "--out", str(dest / "out"), "--no-verify", timeout=60)
    assert done.returncode == 1
    what = "a model config" if option == "--config" else "a vocabulary"
    _one_error(done.stderr, f"{fifo}: {what} is a named pipe (FIFO), {NOT_REGULAR}")
    assert list(dest.iterdir()) == []


def test_sha256_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(Tf2hfError, match=r"a source file is a named pipe \(FIFO\), not a regular file"):
        sha256(fifo)


# --- 5. unusable state files -----------------------------------------------------------------


@pytest.mark.parametrize("target", ["/", "//"])
def test_state_file_naming_the_root_is_ignored(src, dest, tmp_path, target):
    (src / "checkpoint").write_text(f'model_checkpoint_path: "{target}"\n')
    inspected = runner.invoke(app, ["inspect", str(src)])
    assert inspected.exit_code == 0, inspected.output
    converted = runner.invoke(app, ["convert", "bert", "--tf", str(src / "checkpoint"), "--out", str(dest / "out"), "--no-verify"])
    assert converted.exit_code == 0, converted.output
    slimmed = runner.invoke(app, ["slim", str(src), "--out", str(tmp_path / "slim" / "model.ckpt-3")])
    assert slimmed.exit_code == 0, slimmed.output


# --- 6. names that would mislead ------------------------------------------------------------


def test_control_characters_in_a_name_are_escaped(tmp_path, dest):
    given = tmp_path / "x\x1b[31merror: fake\nline"
    result = runner.invoke(app, ["convert", "bert", "--tf", str(given), "--out", str(dest / "out")])
    assert result.exit_code == 1
    _one_error(result.stderr, f"{tmp_path}/x\\x1b[31merror: fake\\x0aline: no such checkpoint, and {tmp_path} has no *.index file; pass the prefix of an existing checkpoint")
    assert "\x1b" not in result.stderr and list(dest.iterdir()) == []


def test_a_200000_character_name_gives_a_short_line(tmp_path, dest):
    given = tmp_path / ("a" * 200_000)
    result = runner.invoke(app, ["convert", "bert", "--tf", str(given), "--out", str(dest / "out")])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert len(line) < MAX_SHOWN_MESSAGE and "characters)…" in line
    assert "the path is too long for this system to look up" in line


def test_shown_keeps_printable_text_and_bounds_everything():
    assert shown("模型/vocab.txt: fine") == "模型/vocab.txt: fine"
    assert shown("a\u202eb\u2028c\td") == "a\\u202eb\\u2028c\\x09d"
    assert len(shown(" ".join(["x" * 250] * 100))) <= MAX_SHOWN_MESSAGE


def test_a_name_too_long_for_the_staging_folder_says_so(src, dest):
    out = dest / ("n" * 240)
    result = runner.invoke(app, ["convert", "bert", "--tf", str(src), "--out", str(out), "--no-verify"])
    assert result.exit_code == 1
    room = 255 - len(f".{out.name}.tf2hf-partial-{os.getpid()}-12345678") + 240
    _one_error(result.stderr, (
        f"{out}: the name is 240 bytes; tf2hf builds the output in a folder beside it named after it with "
        f"{255 - room} bytes more, and a name may have at most 255: choose a --out name of at most {room} bytes"
    ))
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("command", ["convert", "batch", "slim"])
def test_tilde_in_out_is_the_home_folder(tmp_path, command):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    src = _copy("example", tmp_path / "zoo" / "a")
    args = {
        "convert": ["convert", "bert", "--tf", str(src), "--out=~/x", "--no-verify"],
        "batch": ["batch", str(src.parent), "--out=~/x", "--no-verify"],
        "slim": ["slim", str(src), "--out=~/x/model.ckpt-3"],
    }[command]
    done = subprocess.run([sys.executable, "-m", "tf2hf", *args], cwd=work, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HOME": str(home)}, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert (home / "x").is_dir() and list(work.iterdir()) == []
