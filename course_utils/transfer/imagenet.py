"""The lesson's code path on Keras Applications' MobileNetV2, where ImageNet weights can be had.

:func:`load_pretrained_base` gives MobileNetV2 (``weights="imagenet"``,
``include_top=False``) where it can be downloaded, e.g. on Colab, and falls back to
the shipped base, saying so, where it cannot.

Examples
--------
>>> load_pretrained_base("vgg16")
Traceback (most recent call last):
...
ValueError: name: expected 'mobilenet_v2' or 'course', got 'vgg16'
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from course_utils.runtime.tf_setup import import_keras
from course_utils.transfer.base import (
    BASE_IMAGE_SIZE,
    CUT_LAYER,
    TOP_BLOCK,
    check_gray_shape,
    load_base_network,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["PretrainedBase", "load_pretrained_base"]

_IMAGENET_HOST: Final = ("storage.googleapis.com", 443)
_MOBILENET_SIZE: Final = 96


@dataclasses.dataclass(frozen=True)
class PretrainedBase:
    """A base network ready for the lesson's code path, and where it came from.

    Attributes
    ----------
    model: the network, taking the lesson's grayscale images ``(s, s, 1)`` in ``[0, 1]``.
    cut_at: the layer to cut at for feature extraction.
    top_block: prefix(es) of the layers :func:`unfreeze_top_block` unfreezes.
    source: ``"imagenet"`` (MobileNetV2) or ``"course"`` (the shipped base).
    message: one sentence saying which base this is and why.
    """

    model: keras.Model
    cut_at: str
    top_block: tuple[str, ...]
    source: str
    message: str


def load_pretrained_base(
    name: str = "mobilenet_v2",
    input_shape: Sequence[int] = (BASE_IMAGE_SIZE, BASE_IMAGE_SIZE, 1),
    *,
    allow_download: bool = True,
    loader: Callable[..., keras.Model] | None = None,
    reachable: Callable[[], bool] | None = None,
) -> PretrainedBase:
    """A pretrained base for the lesson's code path: MobileNetV2 (ImageNet) or the course's.

    ``name="mobilenet_v2"`` asks for Keras Applications' MobileNetV2 with
    ``weights="imagenet"`` and ``include_top=False`` (width 0.35, 96x96 inputs).
    The grayscale images are resized to 96x96, copied to three channels and scaled
    to ``[-1, 1]`` as MobileNetV2 expects; a global average pooling layer named
    ``global_pool`` is the cut point. When the weights cannot be had (downloads
    not allowed, no network, the download fails) the result is the shipped course
    base instead, and ``message`` says so and why. ``name="course"`` asks for the
    shipped base directly.

    ``loader`` (default ``keras.applications.MobileNetV2``) and ``reachable``
    (default: a 3-second connection test to the weights' host) are there for tests,
    so nothing is ever downloaded by them.

    Raises ``ValueError`` for an unknown ``name``.

    Examples
    --------
    >>> offline = load_pretrained_base(reachable=lambda: False)    # doctest: +SKIP
    >>> offline.source                                             # doctest: +SKIP
    'course'
    """
    shape = check_gray_shape(input_shape)
    if name not in ("mobilenet_v2", "course"):
        raise ValueError(f"name: expected 'mobilenet_v2' or 'course', got {name!r}")
    if name == "mobilenet_v2":
        keras = import_keras()
        loader = keras.applications.MobileNetV2 if loader is None else loader
        reachable = _imagenet_reachable if reachable is None else reachable
        reason = None
        if not allow_download and not _mobilenet_cached():
            reason = "downloads are switched off here"
        elif not _mobilenet_cached() and not reachable():
            reason = "there is no network connection to download them"
        else:
            try:
                network = loader(
                    input_shape=(_MOBILENET_SIZE, _MOBILENET_SIZE, 3), alpha=0.35,
                    include_top=False, weights="imagenet",
                )
            except Exception as exc:  # noqa: BLE001 - any failure means: fall back
                reason = f"the download failed: {type(exc).__name__}: {exc}".strip()
        if reason is None:
            return PretrainedBase(
                model=_wrap_mobilenet(network, shape), cut_at="global_pool",
                top_block=("block_16", "Conv_1"), source="imagenet",
                message="Using MobileNetV2 pretrained on ImageNet (weights='imagenet', "
                        "include_top=False).",
            )
        message = (
            f"ImageNet weights for MobileNetV2 are not available ({reason}): falling back to "
            f"the course's shipped base, pretrained on ALT_STYLE fingers images."
        )
    else:
        message = "Using the course's shipped base, pretrained on ALT_STYLE fingers images."
    return PretrainedBase(
        model=load_base_network(shape), cut_at=CUT_LAYER, top_block=(TOP_BLOCK,),
        source="course", message=message,
    )


def _wrap_mobilenet(network: keras.Model, shape: tuple[int, int, int]) -> keras.Model:
    keras = import_keras()
    layers = keras.layers
    inputs = keras.Input(shape=shape, name="image")
    x = layers.Resizing(_MOBILENET_SIZE, _MOBILENET_SIZE, name="resize_to_base")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Rescaling(2.0, offset=-1.0, name="to_mobilenet_range")(x)  # [0, 1] -> [-1, 1]
    x = network(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    return keras.Model(inputs, x, name="imagenet_base")


def _mobilenet_cached() -> bool:
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return any(cache.glob("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"))


def _imagenet_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(_IMAGENET_HOST, timeout=timeout):
            return True
    except OSError:
        return False
