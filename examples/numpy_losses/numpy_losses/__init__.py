"""numpy_losses: cross entropy, BCE with logits and MSE in NumPy -- lossconf's example kernel.

The functions take ``torch.nn.functional``'s names, parameters and defaults and
NumPy arrays, so this module *is* a lossconf adapter: ``--adapter numpy_losses``.
``grad`` gives hand-written gradients. ``numpy_losses.buggy`` is the same package
with one classic bug, to show what a failing gate looks like.
"""

from ._gradients import grad
from ._losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss

name = "numpy_losses"
version = "0.1.0"

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "grad", "mse_loss"]
