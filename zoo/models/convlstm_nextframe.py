"""ConvLSTM encoder-forecaster: ten frames of a clip in, the next ten out.

``frames (B, 10, 64, 64, 1)`` in [0, 1] -> ``future (B, 10, 64, 64, 1)`` in [0, 1].
The frames are cut into ``patch`` x ``patch`` patches stacked as channels (64x64x1 ->
16x16x16 for patch 4, as PredRNN does for Moving-MNIST), so the recurrent convolutions
run on a 16x16 grid. An encoder ``ConvLSTM2D`` reads the observed frames; a forecaster
``ConvLSTM2D`` starts from the encoder's final state and is fed the last observed frame
at every step; a per-cell ``Dense`` with a sigmoid turns its outputs back into patches of
pixel intensities. Trained on the per-pixel binary cross-entropy (Shi et al. 2015).

Export (``graphs``): neither TFLite nor ONNX has a ConvLSTM op, and a Keras ConvLSTM2D
converts to a WHILE loop (TFLite) or a Loop (ONNX). The exported graph is the same model
unrolled over its fixed 10 + 10 steps (:class:`zoo.layers.convlstm.UnrolledConvLSTM2D`,
the same variables): no loop, two convolutions per step, and, without a loop, full int8
calibration works. ``python -m benchmarks.convlstm_unroll`` measures both forms.
"""

from __future__ import annotations

from dataclasses import replace

from zoo import layers
from zoo._keras import keras, tf
from zoo.constants import MOVING_MNIST_FRAMES as FRAMES
from zoo.constants import MOVING_MNIST_OBSERVED as OBSERVED
from zoo.constants import MOVING_MNIST_SIZE as SIZE
from zoo.registry import register_model, tiny_variant
from zoo.specs import DataSpec, GraphSpec, ModelSpec, Tolerance, loose_drops


def _patches(steps: int, size: int, patch: int, name: str):
    """(B, T, S, S, 1) <-> (B, T, S/p, S/p, p*p): two reshapes and a transpose."""
    grid = size // patch

    def to_patches(x):
        x = tf.reshape(x, (-1, steps, grid, patch, grid, patch))
        x = tf.transpose(x, (0, 1, 2, 4, 3, 5))
        return tf.reshape(x, (-1, steps, grid, grid, patch * patch))

    def to_frames(x):
        x = tf.reshape(x, (-1, steps, grid, grid, patch, patch))
        x = tf.transpose(x, (0, 1, 2, 4, 3, 5))
        return tf.reshape(x, (-1, steps, size, size, 1))

    return keras.layers.Lambda(to_patches if name == "patches" else to_frames, name=name)


def convlstm_nextframe(*, size: int = SIZE, observed: int = OBSERVED,
                       horizon: int = FRAMES - OBSERVED, patch: int = 4, filters: int = 32,
                       kernel: int = 3):
    """Builds ``frames (B, observed, size, size, 1) -> future (B, horizon, size, size, 1)``.

    Args:
        size: frame height and width in pixels (a multiple of ``patch``).
        observed / horizon: frames in, frames out.
        patch: pixels per side of the patches stacked as channels.
        filters: channels of the encoder's and the forecaster's ConvLSTM state.
        kernel: their convolutions' kernel size.

    Example:
        >>> from zoo import create_model
        >>> create_model("convlstm_nextframe_tiny").output_shape
        (None, 10, 64, 64, 1)
    """
    if int(patch) < 1 or int(size) % int(patch):
        raise ValueError(f"size must be a positive multiple of patch; got size {size}, "
                         f"patch {patch}")
    if min(int(observed), int(horizon), int(filters), int(kernel)) < 1:
        raise ValueError(f"observed, horizon, filters and kernel must be positive; got "
                         f"{observed}, {horizon}, {filters}, {kernel}")
    observed, horizon, patch = int(observed), int(horizon), int(patch)
    frames = keras.Input((observed, int(size), int(size), 1), name="frames")
    x = _patches(observed, int(size), patch, "patches")(frames)

    def convlstm(name, **kw):
        return keras.layers.ConvLSTM2D(int(filters), int(kernel), padding="same",
                                       recurrent_activation="sigmoid", name=name, **kw)

    encoder = convlstm("encoder", return_state=True)
    forecaster = convlstm("forecaster", return_sequences=True)
    last = keras.layers.Lambda(lambda a: a[:, -1], name="last_frame")(x)
    _, h, c = encoder(x)
    repeated = keras.layers.Lambda(lambda a: tf.repeat(a[:, None], horizon, axis=1),
                                   name="repeat")(last)
    y = forecaster(repeated, initial_state=[h, c])
    y = keras.layers.Dense(patch * patch, activation="sigmoid", name="pixels")(y)
    future = _patches(horizon, int(size), patch, "future")(y)
    return keras.Model(frames, future, name="convlstm_nextframe")


def unrolled_graph(model):
    """The export graph: the model's own layers with its two ConvLSTM2D layers unrolled
    (:class:`~zoo.layers.convlstm.UnrolledConvLSTM2D` shares their variables, so training
    this graph trains the model: :meth:`zoo.tasks.next_frame.NextFrame.fit` does, 1.6x
    faster than the loop on CPU)."""
    frames = keras.Input(model.get_layer("frames").output.shape[1:], name="frames")
    x = model.get_layer("patches")(frames)
    _, h, c = layers.UnrolledConvLSTM2D(model.get_layer("encoder"), return_state=True,
                                        name="encoder_unrolled")(x)
    last = model.get_layer("last_frame")(x)
    y = layers.UnrolledConvLSTM2D(model.get_layer("forecaster"), return_sequences=True,
                                  steps=int(model.output_shape[1]),
                                  name="forecaster_unrolled")(last, initial_state=[h, c])
    future = model.get_layer("future")(model.get_layer("pixels")(y))
    return keras.Model(frames, future, name="convlstm_nextframe_unrolled")


GRAPHS = (GraphSpec("nextframe", ("frames",), ("future",), build=unrolled_graph,
                    recurrent="unrolled"),)
META = {"observed": OBSERVED, "horizon": FRAMES - OBSERVED, "size": SIZE}

TOLERANCE = {
    "fp32": Tolerance(1e-5, "pixel intensities in [0, 1] through 20 steps of float32 "
                            "convolutions that sum in another order than TensorFlow's"),
    "float16": Tolerance(2e-2, "float16 weights carry 11 significant bits; the rounding "
                               "compounds over 20 recurrent steps"),
}
METRIC_DROP = {
    "fp32": Tolerance(1e-6, "outputs agree to float32 rounding, so the MSE does too"),
    "dynamic": Tolerance(2e-3, "int8 weights: the per-pixel MSE may grow by 0.002"),
    "float16": Tolerance(5e-4, "float16 weights: the per-pixel MSE may grow by 0.0005"),
    "int8": Tolerance(5e-3, "int8 weights and activations (1/256 steps of [0, 1]): the "
                            "per-pixel MSE may grow by 0.005"),
    "compressed": Tolerance(5e-3, "pruned or clustered weights: the MSE may grow by 0.005"),
}

SPEC = register_model(ModelSpec(
    name="convlstm_nextframe",
    builder=convlstm_nextframe,
    family="convlstm_nextframe",
    task="nextframe",
    graphs=GRAPHS,
    data=DataSpec(dataset="moving_mnist", train="train", test="test",
                  calibration="calibration"),
    defaults={"patch": 4, "filters": 32},
    docs="video.md",
    description="ConvLSTM(32) encoder-forecaster over 4x4-pixel patches of Moving-MNIST "
                "(two real MNIST digits bouncing in 64x64 frames): 10 frames in, the next "
                "10 out; exported unrolled (no loop).",
    weights=("moving_mnist",),
    intended_use="A starting point for short-horizon video or radar-map prediction on "
                 "small grey frames; fine-tune or retrain with the recipe on your clips.",
    limitations=(
        "Trained and tested on synthetic motion of real digits: straight lines at one "
        "speed, bouncing; it has not seen natural video.",
        "Predictions blur as the horizon grows (the loss averages over the futures it "
        "cannot tell apart): the MSE beats copying the last frame (0.0324 against 0.0688), "
        "the SSIM does not (0.327 against 0.586; measured on the 256 test clips).",
        "The frame size and the 10 + 10 frames are fixed by the exported graph.",
    ),
    tensor_tolerance=TOLERANCE,
    metric_drop=METRIC_DROP,
    precisions=("fp32", "dynamic", "float16", "int8"),
    meta=META,
    recipe={"epochs": 4, "batch_size": 16, "learning_rate": 2e-3, "schedule": "cosine",
            "seed": 0, "target": {"mse": ("<=", 0.04)},
            "reproduce_tolerance": {"mse": 0.002, "ssim": 0.02}},
))

tiny_variant(
    SPEC,
    defaults={"patch": 8, "filters": 4},
    data=replace(SPEC.data, train="train_small"),
    recipe={"epochs": 1, "batch_size": 32, "learning_rate": 1e-2, "seed": 0},
    metric_drop=loose_drops(METRIC_DROP, 1.0, "the tiny variant is trained for one epoch: "
                                              "tests check the mechanics, the pretrained "
                                              "model the MSE"),
)
