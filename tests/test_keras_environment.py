"""crpsgd_hvd.keras refuses an unsupported set-up at import, saying what to do."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow", reason="needs TensorFlow to load Keras 3 as tf.keras")


def run_python(code, **env):
    environment = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    environment.update(TF_CPP_MIN_LOG_LEVEL="2", **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=300)


def test_keras3_import_error():
    # TensorFlow loaded first, without TF_USE_LEGACY_KERAS, makes tf.keras Keras 3.
    result = run_python("import tensorflow as tf; tf.keras.Model; import crpsgd_hvd.keras")

    assert result.returncode != 0
    assert "ImportError: tf.keras is Keras 3" in result.stderr
    assert "set TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported" in result.stderr


def test_import_first_selects_keras2():
    result = run_python("import crpsgd_hvd.keras, tensorflow as tf, tf_keras; print(tf.keras.Model is tf_keras.Model)")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
