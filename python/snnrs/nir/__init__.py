"""NIR (the Neuromorphic Intermediate Representation) export and import.

:func:`export` writes a spiking snnrs network as a ``nir.NIRGraph`` that Norse, SpikingJelly,
Sinabs, Lava and neuromorphic chips read; :func:`load` runs a NIR graph (written by snnrs or by
another library) as a trainable snnrs module over ``[T, B, ...]`` sequences. The exact mapping
between snnrs's discrete neurons and NIR's continuous-time ones is :mod:`snnrs.nn.nir_form`
and docs/nir.md. The ``nir`` package is optional (``pip install snnrs[nir]``) and imported only
when a function here runs.

Example::

    import nir, snnrs, torch
    net = snnrs.models.create("convnet", kind="snn", T=4).eval()
    graph = snnrs.nir.export(net, (1, 28, 28), dt=1e-3)      # one step: [1, 28, 28] -> [10]
    nir.write("convnet.nir", graph)
    again = snnrs.nir.load("convnet.nir")                     # dt read from the graph
    images = torch.rand(8, 1, 28, 28)
    logits = again(images.expand(4, *images.shape))           # [T, B, 1, 28, 28] -> [T, B, 10]
    # logits: net.forward_steps(images), up to the rounding of the folded BatchNorm
"""

from .export import export
from .limits import Limits
from .load import NIRModule, load

__all__ = ["Limits", "NIRModule", "export", "load"]
