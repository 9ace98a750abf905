"""Import-time checks of the TensorFlow, Keras and Horovod versions the adapter supports."""

import os

SUPPORTED_TENSORFLOW = "2.21"
INSTALL_HINT = ("install the supported versions with scripts/bootstrap.py, or "
                f"pip install 'tensorflow-cpu=={SUPPORTED_TENSORFLOW}.*' 'tf_keras=={SUPPORTED_TENSORFLOW}.*' "
                "and rebuild Horovod 0.28.1 with HOROVOD_WITH_TENSORFLOW=1")


def check_environment():
    """Raise ImportError naming what to install when the set-up cannot work."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(f"crpsgd_hvd.keras needs TensorFlow {SUPPORTED_TENSORFLOW}: {INSTALL_HINT}") from error
    try:
        import tf_keras
    except ImportError as error:
        raise ImportError("crpsgd_hvd.keras needs tf_keras (Keras 2), because Horovod's Keras "
                          f"optimizer does not support Keras 3: {INSTALL_HINT}") from error

    # Horovod's Keras layer uses tf.keras, which must therefore be tf_keras (Keras 2).
    if tf.keras.Model is not tf_keras.Model:
        keras_version = getattr(tf.keras, "__version__", "unknown")
        raise ImportError(
            f"tf.keras is Keras {keras_version}, but Horovod's Keras optimizer needs Keras 2 "
            "(tf_keras): set TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported, or import "
            f"crpsgd_hvd.keras first (TF_USE_LEGACY_KERAS is {os.environ.get('TF_USE_LEGACY_KERAS')!r})")
    if not tf.__version__.startswith(SUPPORTED_TENSORFLOW + "."):
        raise ImportError(f"crpsgd_hvd.keras supports TensorFlow {SUPPORTED_TENSORFLOW}, found "
                          f"{tf.__version__}: {INSTALL_HINT}")

    try:
        # Horovod's own extension check raises ImportError here when TensorFlow support is missing.
        import horovod.tensorflow.keras  # noqa: F401
    except ImportError as error:
        raise ImportError(f"Horovod was built without TensorFlow support ({error}): {INSTALL_HINT}") from error
    use_keras2_backend_in_horovod_callbacks(tf_keras)
    return tf_keras


def use_keras2_backend_in_horovod_callbacks(tf_keras):
    """Point Horovod's Keras callbacks at tf_keras's backend.

    Horovod 0.28.1's ``horovod.tensorflow.keras.callbacks`` takes its backend
    from ``import keras``, which is Keras 3 once TensorFlow >= 2.16 is
    installed, so ``MetricAverageCallback`` fails with "module 'keras.backend'
    has no attribute 'constant'". Its callbacks read the module-level name when
    they are built, so replacing it here fixes every callback built afterwards.
    """
    from horovod.tensorflow.keras import callbacks

    callbacks.K = tf_keras.backend
