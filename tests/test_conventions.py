"""What users of the ecosystem expect from a CLI and a library (issue 16), one test per point."""

from __future__ import annotations

import inspect
import json
import logging
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
from typer.testing import CliRunner

import tf2hf
from support import ROOT, fixture
from tf2hf.cli import app
from tf2hf.cli import render

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _default_verbosity():
    # -q / -v are per run; a test that sets them must not leak into the next.
    yield
    render.configure(quiet=False, verbose=0)


# --- 1. the README's two commands --------------------------------------------------------------


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```sh\n(.*?)^```$", text, re.S | re.M).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_first_command_installs_the_runtime_only_and_converts_the_example():
    first, second = _readme_commands()  # .ci/run insists on exactly two
    assert "python -m venv .venv" in first and ".venv/bin/pip install -e . " in first
    assert "[dev]" not in first and "tensorflow" not in first and "--force" not in first
    assert first.index("torch==2.13.0") < first.index("pip install -e .")  # CPU torch first
    assert ".venv/bin/tf2hf convert bert --tf fixtures/example --out example-model" in first
    assert '.venv/bin/pip install -e ".[dev]"' in second and "pytest" in second
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # No flag a first run would need explaining: the example's training graph gives its GELU.
    assert "--gelu" not in first and (ROOT / "fixtures" / "example" / "model.ckpt-3.meta").exists()
    assert "tells tf2hf its GELU formula" in readme
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "/.venv/" in ignored and "/example-model/" in ignored


def test_the_example_converts_and_verifies_with_tensorflow_unimportable(tmp_path):
    # What the README's first command proves in a fresh venv, here with TensorFlow blocked.
    code = textwrap.dedent(f"""
        import sys
        class NoTF:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
                    raise ImportError("tensorflow is not installed")
        sys.meta_path.insert(0, NoTF())
        import tf2hf
        result = tf2hf.convert("bert", tf={str(fixture("example"))!r}, out={str(tmp_path / "m")!r})  # as the README runs it
        assert result.verification["passed"], result.verification
        assert "tensorflow" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=600)


# --- 2. standard flags ------------------------------------------------------------------------


def test_version_short_help_and_completion():
    version = invoke("--version")
    assert version.exit_code == 0 and version.stdout.strip() == f"tf2hf {tf2hf.__version__}"
    short = invoke("-h")
    assert short.exit_code == 0 and "--install-completion" in short.stdout
    for flag in ("-q, --quiet", "-v, --verbose", "--version"):
        assert flag in short.stdout
    assert invoke("convert", "-h").exit_code == 0


def test_quiet_prints_nothing_and_verbose_shows_the_library_log(tmp_path):
    quiet = invoke("-q", "convert", "bert", "--tf", fixture("bert_classifier"), "--out", tmp_path / "q", "--no-verify")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "q" / "config.json").exists()
    loud = invoke("-v", "convert", "auto", "--tf", fixture("bert_classifier"), "--out", tmp_path / "v", "--no-verify")
    assert loud.exit_code == 0, loud.output
    assert "note: " in loud.stderr and "detected family bert" in loud.stderr
    # a note of the result is printed once, not again as a log line
    assert loud.stderr.count("tokenizer: 50 tokens") == 0 and loud.stdout.count("tokenizer: 50 tokens") == 1


# --- 3. the library logs, never prints; its signature and wording --------------------------------


def test_no_print_in_the_library():
    # The CLI and the batch display are what print; everything else logs or returns.
    offenders = []
    for path in (ROOT / "tf2hf").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("tf2hf/cli/") or rel == "tf2hf/batch/display.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"(?<![\w.])print\(", line):
                offenders.append(f"{rel}:{number}")
    assert offenders == []


def test_convert_shows_its_real_parameters_and_documents_progress():
    signature = inspect.signature(tf2hf.convert)
    assert not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for name in ("tf", "out", "config", "vocab", "gelu", "task", "labels", "progress", "verify"):
        assert name in signature.parameters
    doc = inspect.getdoc(tf2hf.convert)
    for phase in ('"planning"', '"writing"', '"verifying"'):
        assert phase in doc
    assert 'logger ``tf2hf``' in doc


def test_progress_phases_and_log_records(tmp_path, caplog):
    phases = []
    with caplog.at_level(logging.INFO, logger="tf2hf"):
        result = tf2hf.convert("auto", tf=fixture("example"), out=tmp_path / "m", gelu="tanh",
                               progress=lambda done, total, phase: phases.append((phase, done, total)))
    names = [p for p, _, _ in phases]
    assert names[0] == "planning" and names[-1] == "verifying" and "writing" in names
    assert names.index("verifying") > max(i for i, n in enumerate(names) if n == "writing")
    assert phases[-1][1] == phases[-1][2] == result.output_bytes
    messages = [r.getMessage() for r in caplog.records if r.name == "tf2hf"]
    assert any("detected family bert" in m for m in messages)
    assert all(note in messages for note in result.notes)


def test_python_messages_name_keyword_arguments_not_flags(tmp_path, caplog):
    with pytest.raises(tf2hf.Tf2hfError) as caught:
        tf2hf.convert("bert", tf=fixture("example"))
    assert str(caught.value) == "no output folder given; pass out="
    folder = tmp_path / "ck"
    shutil.copytree(fixture("bert_classifier"), folder)
    (folder / "vocab.txt").unlink()
    with caplog.at_level(logging.WARNING, logger="tf2hf"):
        result = tf2hf.convert("bert", tf=folder, dry_run=True)
    assert result.warnings and not any("--" in w for w in result.warnings)
    assert "pass vocab=" in result.warnings[0]
    assert any("pass vocab=" in r.getMessage() for r in caplog.records)
    # the command line keeps its own spelling
    cli = invoke("convert", "bert", "--tf", folder, "--dry-run")
    assert "(pass --vocab)" in cli.stdout


def test_inspect_is_renamed_with_a_deprecated_alias():
    report = tf2hf.inspect_checkpoint(fixture("bert_classifier"))
    assert report.family == "bert"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from tf2hf import inspect as old
    assert old is tf2hf.inspect_checkpoint
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert "inspect" not in tf2hf.__all__


# --- 4. --json everywhere ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [["convert", "bert", "--tf", "{missing}", "--out", "{out}", "--json"],
                                     ["inspect", "{missing}", "--json"],
                                     ["slim", "{missing}", "--out", "{out}", "--json"]])
def test_json_errors_are_json_on_stdout_with_the_same_exit_code(tmp_path, command):
    missing = tmp_path / "nothing" / "model.ckpt-1"
    result = invoke(*[c.format(missing=missing, out=tmp_path / "o") for c in command])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["file"] == str(missing) and data["error"].startswith(f"{missing}: ")
    assert data["type"] == "CheckpointNotFoundError"


def test_architectures_json():
    result = invoke("architectures", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    bert = next(f for f in data if f["name"] == "bert")
    assert bert["convert"] == ["tf2hf", "convert", "bert"]
    classifier = next(t for t in bert["targets"] if t["class"] == "BertForSequenceClassification")
    assert classifier["task"] == "text-classification" and "pooler" in classifier["heads"]


# --- 5 and 6. model card for the Hub, labels ---------------------------------------------------


def _front_matter(card: str) -> list[str]:
    assert card.startswith("---\n")
    return card.split("---\n")[1].splitlines()


def test_card_and_config_with_labels(tmp_path):
    result = invoke("convert", "bert", "--tf", fixture("bert_classifier"), "--out", tmp_path / "m", "--labels", "neg,neu,pos", "--no-verify")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
    assert config["label2id"] == {"neg": 0, "neu": 1, "pos": 2}
    card = (tmp_path / "m" / "README.md").read_text()
    front = _front_matter(card)
    assert "library_name: transformers" in front and "pipeline_tag: text-classification" in front
    assert "tags:" in front and "- tf2hf" in front
    assert 'AutoModelForSequenceClassification.from_pretrained("m")' in card
    assert "`hf upload YOUR-NAME/m m`" in card
    assert "0 = `neg`, 1 = `neu`, 2 = `pos`" in card


def test_labels_from_a_file_and_generic_labels(tmp_path):
    (tmp_path / "labels.txt").write_text("negative\n\nneutral\npositive\n")
    result = invoke("convert", "bert", "--tf", fixture("bert_classifier"), "--out", tmp_path / "f", "--labels", tmp_path / "labels.txt", "--no-verify")
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "f" / "config.json").read_text())["id2label"].values()) == ["negative", "neutral", "positive"]
    plain = invoke("convert", "bert", "--tf", fixture("bert_classifier"), "--out", tmp_path / "g", "--no-verify")
    assert plain.exit_code == 0
    assert "The 3 labels are generic (`LABEL_0` …)" in (tmp_path / "g" / "README.md").read_text()


def test_wrong_label_count_is_one_line(tmp_path):
    result = invoke("convert", "bert", "--tf", fixture("bert_classifier"), "--out", tmp_path / "m", "--labels", "neg,pos")
    assert result.exit_code == 1
    source = fixture("bert_classifier") / "model.ckpt-1"
    assert result.stderr.strip().splitlines() == [
        f"error: {source}: 2 labels given (neg, pos) but the classifier head has 3 outputs; give 3 labels, in the order of the head's outputs"]
    assert not (tmp_path / "m").exists()
    no_head = invoke("convert", "bert", "--tf", fixture("example"), "--out", tmp_path / "p", "--labels", "a,b", "--dry-run")
    assert no_head.exit_code == 1 and "has no classification head; leave them out" in no_head.stderr


def test_pretraining_card_uses_the_matching_auto_class(tmp_path):
    tf2hf.convert("bert", tf=fixture("example"), out=tmp_path / "m", gelu="tanh", verify=False)
    card = (tmp_path / "m" / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in _front_matter(card)
    assert "from transformers import AutoModelForPreTraining, AutoTokenizer" in card
    assert "generic" not in card  # no classifier, no labels to speak of


# --- 7. convert_many from a script without the __main__ guard -----------------------------------


def test_convert_many_in_an_unguarded_script_stops_at_once_saying_what_to_add(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(f"""
        import tf2hf
        for result in tf2hf.convert_many([{str(fixture("example"))!r}], {str(tmp_path / "out")!r}, gelu="tanh", verify=False):
            print(result.status, result.reason)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0
    assert f"{script}: line 3 runs tf2hf.convert_many outside `if __name__ == \"__main__\":`" in done.stderr
    assert "worker process died" not in done.stdout + done.stderr
    assert len(done.stderr.splitlines()) < 30 and not (tmp_path / "out").exists()


def test_convert_many_in_a_guarded_script_works(tmp_path):
    script = tmp_path / "guarded.py"
    script.write_text(textwrap.dedent(f"""
        import tf2hf
        if __name__ == "__main__":
            for result in tf2hf.convert_many([{str(fixture("example"))!r}], {str(tmp_path / "out")!r}, gelu="tanh", verify=False):
                print(result.status, result.reason)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["converted", "None"]


# --- 8. small things ---------------------------------------------------------------------------


def test_convert_auto_says_which_family(tmp_path):
    result = invoke("convert", "auto", "--tf", fixture("bert_classifier"), "--out", tmp_path / "m", "--no-verify")
    assert "  family: bert (detected from the variable names)" in result.stdout.splitlines()
    plan = invoke("convert", "--tf", fixture("bert_classifier"), "--dry-run")  # auto is the default
    assert plan.exit_code == 0 and "(detected)" in plan.stdout


def test_family_is_given_the_same_way_to_convert_and_inspect(tmp_path):
    ckpt = fixture("bert_classifier")
    by_option = invoke("convert", "--family", "bert", "--tf", ckpt, "--dry-run")
    assert by_option.exit_code == 0 and "family:   bert" in by_option.stdout
    assert invoke("inspect", "--family", "bert", "--tf", ckpt).exit_code == 0
    assert invoke("inspect", ckpt, "--family", "bert").exit_code == 0
    twice = invoke("convert", "bert", "--family", "albert", "--tf", ckpt, "--dry-run")
    assert twice.exit_code == 1 and "the family is given twice" in twice.stderr


@pytest.mark.parametrize("existing", [False, True])
def test_slim_into_a_folder_copies_config_and_vocabulary(tmp_path, existing):
    dest = tmp_path / "release"
    if existing:
        dest.mkdir()
    result = invoke("slim", fixture("bert_classifier"), "--out", f"{dest}/" if not existing else dest)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in dest.iterdir()) == ["bert_config.json", "checkpoint", "model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index", "vocab.txt"]
    converted = invoke("convert", "bert", "--tf", dest, "--dry-run")  # config and vocabulary found beside it
    assert converted.exit_code == 0 and "vocab:    " + str(dest / "vocab.txt") in converted.stdout


def test_batch_lists_each_entry_once_on_one_stream(tmp_path):
    zoo = tmp_path / "zoo"
    shutil.copytree(fixture("bert_classifier"), zoo / "cls")
    result = invoke("batch", zoo, "--out", tmp_path / "out", "--workers", "1", "--no-verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("cls:") == 1 and result.stderr == ""
    assert result.stdout.strip().splitlines()[-1].startswith("1 converted, 0 skipped, 0 failed")


def test_progress_bar_names_the_phase(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = render.ProgressBar(show=True)
    assert bar.update is not None
    task = bar._bar.tasks[0]
    assert task.description == "planning"
    bar.update(10, 100, "writing")
    assert task.description == "writing" and task.completed == 10
    bar.update(100, 100, "verifying")
    assert task.description == "verifying"


def test_batch_json_is_the_report_on_stdout(tmp_path):
    zoo = tmp_path / "zoo"
    shutil.copytree(fixture("bert_classifier"), zoo / "cls")
    result = invoke("batch", zoo, "--out", tmp_path / "out", "--workers", "1", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [e["key"] for e in data["entries"]] == ["cls"] and data["entries"][0]["status"] == "converted"
    missing = invoke("batch", tmp_path / "nope", "--out", tmp_path / "out2", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["file"] == str(tmp_path / "nope")


@pytest.mark.parametrize("cli, python", [
    ("pass --vocab", "pass vocab="),
    ("try --gelu tanh", 'try gelu="tanh"'),
    ("pass either --tower or --target, not both", "pass either tower= or target=, not both"),
    ("/tmp/run--2/m: exists; choose another --out or pass --force to replace it",
     "/tmp/run--2/m: exists; choose another out= or pass force=True to replace it"),
    ("skipped (--no-verify)", "skipped (verify=False)"),
])
def test_option_names_in_python_spelling(cli, python):
    from tf2hf.messages import to_python

    assert to_python(cli) == python
