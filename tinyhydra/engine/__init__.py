"""``tinyhydra.engine``: reverse-mode automatic differentiation on NumPy arrays (CuPy on a GPU).

Read in this order:

1. :mod:`.backend`: the NumPy/CuPy switch, chosen from the array itself (and
   :mod:`.memory`: glibc keeps freed memory for reuse);
2. :mod:`.graph`: grad mode, the context a Function saves, recorded nodes and array versions;
3. :mod:`.tensor`: ``Tensor``, ``Function`` (``forward(ctx, ...)``/``backward(ctx, grad)``) and
   ``backward()`` over the graph in reverse topological order;
4. :mod:`.ops`: the elementwise, reduction, shape and matmul Functions with their derivatives,
   and :mod:`.operators`, which makes them Tensor's ``+``, ``@``, ``[]`` and ``.sum()``;
5. :mod:`.softmax`, :mod:`.norm`, :mod:`.embedding`: fused Functions with a derived backward
   (softmax, log-softmax, cross-entropy, layer norm, embedding lookup);
6. :mod:`.gradcheck`: every backward checked against central differences in float64;
7. :mod:`.profiler` (time per Function) and :mod:`.checkpoint` (arrays to ``.npz``, no pickle).
"""
from . import operators  # noqa: F401  (attaches Tensor's operators: see operators.py)
