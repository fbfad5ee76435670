"""``tf2hf batch --executor dask`` and ``convert_many(..., executor="dask")``.

One ``LocalCluster`` of 2 worker processes serves the module (tf2hf's own configuration of it,
with one retry after a worker death); the CLI reaches it through ``--scheduler``, the Python API
through ``client=``. The zoo is the mixed one of test_batch.py.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import sys
from pathlib import Path

import pytest

import tf2hf
from crashing_jobs import die_while_writing
from support import fixture
from test_batch import CORRUPT, NONBERT, architectures, batch, build_zoo, copy_fixture, partial_leftovers
from tf2hf.batch.events import Progress, Started
from tf2hf.batch.run import convert_many
from tf2hf.errors import ClusterError
from tf2hf.batch.zoo import discover

MISSING_DASK = "the dask executor needs Dask's distributed scheduler, which is not installed; pip install 'tf2hf[cluster]'"


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")
    from distributed import Client

    from tf2hf.batch.dask_cluster import local_cluster

    with local_cluster(2, allowed_failures=1) as local, Client(local, set_as_default=False) as client:
        yield local.scheduler_address, client


def probes(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tf2hf-dask-probe-*")]


def outputs(folder: Path) -> dict[str, list[str]]:
    """Every output folder (by its marker) with its file names."""
    return {
        str(m.parent.relative_to(folder)): sorted(p.name for p in m.parent.iterdir())
        for m in folder.rglob(".tf2hf-source.json")
    }


def test_mixed_zoo_converts_as_with_the_local_executor(cluster, tmp_path):
    address, _client = cluster
    root = tmp_path / "zoo"
    good = build_zoo(root)
    local, dask = tmp_path / "local", tmp_path / "dask"
    common = ["--no-verify", "--report"]
    by_local = batch(root, "--out", local, "--workers", 2, *common, tmp_path / "local.json")
    by_dask = batch(root, "--out", dask, "--executor", "dask", "--scheduler", address, *common, tmp_path / "dask.json")
    assert by_local.exit_code == 1, by_local.output
    assert by_dask.exit_code == 1, by_dask.output

    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("local", "dask")]
    statuses = [{e["key"]: e["status"] for e in r["entries"]} for r in reports]
    reasons = [{e["key"]: e["reason"] for e in r["entries"] if e["status"] == "failed"} for r in reports]
    assert statuses[0] == statuses[1]
    assert {k for k, s in statuses[1].items() if s == "converted"} == set(good)
    assert reasons[0] == reasons[1] and CORRUPT in reasons[1]
    assert reports[1]["counts"] == reports[0]["counts"] and reports[1]["workers"] == 2
    assert (NONBERT in reasons[1]) == (root / NONBERT).exists()

    assert outputs(dask) == outputs(local) and set(outputs(dask)) == set(good)
    for key, cls in good.items():
        assert architectures(dask / key) == cls
        assert (dask / key / "model.safetensors").read_bytes() == (local / key / "model.safetensors").read_bytes(), key
        assert (dask / key / "config.json").read_bytes() == (local / key / "config.json").read_bytes(), key
    assert not (dask / CORRUPT).exists() and partial_leftovers(dask) == [] and probes(dask) == []
    assert by_dask.stdout.splitlines()[-1].startswith(f"{len(good)} converted, 0 skipped, {len(reasons[1])} failed")

    again = batch(root, "--out", dask, "--executor", "dask", "--scheduler", address, *common, tmp_path / "again.json")
    assert again.exit_code == 1
    rerun = {e["key"]: e["status"] for e in json.loads((tmp_path / "again.json").read_text())["entries"]}
    assert rerun == {k: ("skipped" if s == "converted" else s) for k, s in statuses[1].items()}


def test_python_api_takes_a_client_and_feeds_live_progress(cluster, tmp_path):
    _address, client = cluster
    entries = [
        str(fixture("bert_pretrain")),
        {"source": str(fixture("albert_classifier") / "model.ckpt-1"), "out": "nested/albert", "gelu": "tanh"},
        {"source": str(tmp_path / "missing"), "out": "missing"},
    ]
    events = []
    out = tmp_path / "out"
    results = {r.key: r for r in tf2hf.convert_many(entries, out, client=client, verify=False, on_event=events.append)}
    assert {k: r.status for k, r in results.items()} == {"bert_pretrain": "converted", "nested/albert": "converted", "missing": "failed"}
    assert results["nested/albert"].target_class == "AlbertForSequenceClassification"
    assert json.loads((out / "nested" / "albert" / "config.json").read_text())["hidden_act"] == "gelu_new"
    # A checkpoint missing everywhere gets the ordinary message, not the shared-storage one.
    assert results["missing"].reason.startswith(str(tmp_path / "missing")) and "not visible" not in results["missing"].reason

    # Progress comes from the jobs on the workers, through the scheduler.
    assert {e.key for e in events} <= set(results) and any(isinstance(e, Started) for e in events)
    assert any(isinstance(e, Progress) and e.phase == "writing" and 0 < e.done <= e.total for e in events)
    assert client.status == "running"  # a client passed in is left as it was
    assert probes(out) == []


def test_worker_killed_while_writing_is_retried(cluster, tmp_path):
    from tf2hf.batch.dask_executor import DaskExecutor

    _address, client = cluster
    root = tmp_path / "zoo"
    copy_fixture("bert_pretrain", root / "victim")
    copy_fixture("bert_classifier", root / "other")
    flag = tmp_path / "killed.json"
    out = tmp_path / "out"
    job = functools.partial(die_while_writing, key="victim", flag=str(flag))
    with DaskExecutor(client=client, job=job) as executor:
        results = {r.key: r for r in convert_many(discover(root), out, executor=executor, verify=False)}

    staged = json.loads(flag.read_text())
    assert len(staged) == 1 and staged[0].startswith(".victim.tf2hf-partial-")  # died mid-write
    assert {k: r.status for k, r in results.items()} == {"victim": "converted", "other": "converted"}
    assert partial_leftovers(out) == []  # the retry removed the dead worker's staging folder
    reference = tf2hf.convert("bert", tf=str(root / "victim"), out=str(tmp_path / "reference"), verify=False)
    assert reference.target_class == results["victim"].target_class
    assert (out / "victim" / "model.safetensors").read_bytes() == (tmp_path / "reference" / "model.safetensors").read_bytes()


def test_entry_whose_workers_keep_dying_is_reported_failed_and_rerun_converts_it(cluster, tmp_path):
    from tf2hf.batch.dask_executor import DaskExecutor

    address, client = cluster
    root = tmp_path / "zoo"
    copy_fixture("bert_pretrain", root / "victim")
    copy_fixture("bert_classifier", root / "other")
    out = tmp_path / "out"
    job = functools.partial(die_while_writing, key="victim", flag=str(tmp_path / "killed.json"), always=True)
    with DaskExecutor(client=client, job=job) as executor:
        results = {r.key: r for r in convert_many(discover(root), out, executor=executor, verify=False)}

    assert {k: r.status for k, r in results.items()} == {"victim": "failed", "other": "converted"}
    assert results["victim"].error == "KilledWorker"
    assert re.fullmatch(
        r"internal error: the Dask worker converting this entry died \(killed, or out of memory\?\), 2 time\(s\), "
        r"last on tcp://127\.0\.0\.1:\d+; convert it alone with tf2hf convert to see why",
        results["victim"].reason,
    ), results["victim"].reason
    assert not (out / "victim").exists()  # at most staging folders of the dead workers

    rerun = batch(root, "--out", out, "--executor", "dask", "--scheduler", address, "--no-verify", "--report", tmp_path / "r.json")
    assert rerun.exit_code == 0, rerun.output
    entries = {e["key"]: e["status"] for e in json.loads((tmp_path / "r.json").read_text())["entries"]}
    assert entries == {"victim": "converted", "other": "skipped"}
    assert architectures(out / "victim") == "BertForPreTraining"
    assert partial_leftovers(out) == [] and probes(out) == []


def test_paths_workers_do_not_see_fail_their_entry_with_the_reason(cluster, tmp_path, monkeypatch):
    import tf2hf.batch.dask_executor as dask_executor

    _address, client = cluster
    gone = tmp_path / "only-here" / "model.ckpt-1"
    # As if the batch's machine saw the checkpoint and the workers did not.
    monkeypatch.setattr(dask_executor, "source_exists", lambda source: True)
    (result,) = convert_many([{"source": str(gone), "out": "m"}], tmp_path / "out", client=client, verify=False)
    assert result.status == "failed" and result.error == "ClusterError"
    shared = "workers must see the zoo and the output root at the same paths (shared storage)"
    match = re.fullmatch(rf"{re.escape(str(gone))}: is not visible on worker (\S+); {re.escape(shared)}", result.reason)
    assert match and match.group(1) in client.nthreads(), result.reason
    monkeypatch.undo()

    # As if the output root the workers see were another folder than the batch's (no probe file).
    monkeypatch.setattr(dask_executor.DaskExecutor, "_probe", lambda self, payload: ".tf2hf-dask-probe-1-elsewhere")
    out = tmp_path / "out2"
    out.mkdir()
    (result,) = convert_many([str(fixture("bert_pretrain"))], out, client=client, verify=False)
    assert result.status == "failed"
    assert re.fullmatch(rf"{re.escape(str(out))}: is not visible on worker \S+; {re.escape(shared)}", result.reason), result.reason
    assert list(out.iterdir()) == []


def test_unreachable_scheduler_and_a_cluster_without_workers(tmp_path):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from tf2hf.batch.dask_executor import DaskExecutor

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClusterError) as caught:
        DaskExecutor(f"tcp://127.0.0.1:{port}", timeout=1)
    assert str(caught.value).startswith(f"tcp://127.0.0.1:{port}: cannot reach the Dask scheduler (")
    assert str(caught.value).endswith("); start one with 'dask scheduler', or check the --scheduler address")

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as empty:
        with pytest.raises(ClusterError) as caught:
            DaskExecutor(empty.scheduler_address, timeout=1)
    address = empty.scheduler_address
    assert str(caught.value) == f"{address}: the Dask scheduler has no workers after 1 s; start some with 'dask worker {address}'"


def test_entries_fail_when_every_worker_leaves(tmp_path):
    pytest.importorskip("distributed")
    from crashing_jobs import start_then_sleep
    from distributed import LocalCluster

    from tf2hf.batch.events import Finished
    from tf2hf.batch.dask_executor import DaskExecutor

    local = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    with local, DaskExecutor(local.scheduler_address, job=start_then_sleep, timeout=1) as executor:
        for key in "abc":
            executor.submit(key, {"key": key, "source": str(tmp_path / key), "out": str(tmp_path / "out" / key), "out_root": str(tmp_path / "out")})
        finished = {}
        for event in executor.events():
            if isinstance(event, Started) and not finished and len(local.workers) == 1:
                local.scale(0)  # the only worker leaves while converting "a"
            if isinstance(event, Finished):
                finished[event.key] = event.result
    assert sorted(finished) == ["a", "b", "c"]  # each exactly once, none lost
    reason = f"the Dask scheduler {local.scheduler_address} has had no workers for 1 s; start workers and run the same command again to convert this entry"
    assert {k: (r["status"], r["reason"]) for k, r in finished.items()} == {k: ("failed", reason) for k in "abc"}


def test_without_dask_the_executor_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask[distributed] were not installed
    copy_fixture("bert_pretrain", tmp_path / "zoo" / "m")
    result = batch(tmp_path / "zoo", "--out", tmp_path / "out", "--executor", "dask")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {MISSING_DASK}"
    with pytest.raises(ClusterError) as caught:
        list(convert_many([tmp_path / "zoo" / "m"], tmp_path / "out", executor="dask"))
    assert str(caught.value) == MISSING_DASK
    assert not (tmp_path / "out").exists()

    wrong = batch(tmp_path / "zoo", "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:8786")
    assert wrong.exit_code == 1
    assert wrong.stderr.strip() == "error: --scheduler tcp://127.0.0.1:8786: only the dask executor uses a scheduler; add --executor dask"
