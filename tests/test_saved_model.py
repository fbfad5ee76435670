"""SavedModel exports: ``--tf export/<timestamp>/`` or its ``variables/`` folder."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from support import SHARED
from tf2hf.cli import app
from tf2hf.tfckpt import open_checkpoint, resolve_prefix


@pytest.mark.tf
def test_a_saved_model_written_by_tensorflow_is_read_from_its_export_folder(tmp_path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    module = tf.Module()
    module.kernel = tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4))
    module.bias = tf.Variable(np.ones(4, np.float32))
    module.call = tf.function(lambda x: tf.matmul(x, module.kernel) + module.bias,
                              input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    export = tmp_path / "export" / "1576126868"
    tf.saved_model.save(module, str(export))
    assert (export / "saved_model.pb").is_file()

    prefix = resolve_prefix(export)
    assert prefix == export / "variables" / "variables"
    assert resolve_prefix(export / "variables") == prefix
    oracle = tf.train.load_checkpoint(str(prefix))
    with open_checkpoint(export) as ckpt:
        numeric = [n for n, i in ckpt.variables.items() if i.dtype != "string"]
        assert sorted(ckpt.variables) == sorted(oracle.get_variable_to_shape_map())
        for name in numeric:
            np.testing.assert_array_equal(ckpt.read(name), oracle.get_tensor(name))


def test_the_real_estimator_export_plans_from_its_export_folder(tmp_path):
    source = SHARED / "real-index" / "34127chi-albert_zh_sr-export_1576126868_variables"
    if not source.is_dir():
        pytest.skip(f"{source} is not available")
    # The folder as the Estimator wrote it: saved_model.pb beside variables/.
    export = tmp_path / "export" / "1576126868"
    (export / "variables").mkdir(parents=True)
    shutil.copyfile(source / "variables.index", export / "variables" / "variables.index")
    (export / "saved_model.pb").write_bytes(b"")  # only its presence marks the export
    config = source / "config_from_repo" / "albert_config_tiny_g.json"
    result = CliRunner().invoke(app, ["convert", "auto", "--tf", str(export), "--config", str(config), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target_class"] == "AlbertModel"
    assert report["source"] == str(export / "variables" / "variables")
