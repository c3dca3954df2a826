"""``tinycnn explore``: a web page to look inside a trained model.

Start it with ``tinycnn explore runs/mnist-lenet5`` (a run folder or a checkpoint file) and
open the address it prints. The page draws on three parts:

* :mod:`.model_view`: the numbers, each layer's output, saliency and Grad-CAM for one image;
* :mod:`.pictures` and :mod:`.drawing`: arrays as small PNG pictures; a drawn digit centred as in MNIST;
* :mod:`.server`: the HTTP server and its JSON endpoints; the page itself is in ``static/``.
"""

from .model_view import ModelView, display_layers
from .server import Explorer, make_server, serve

__all__ = ["ModelView", "display_layers", "Explorer", "make_server", "serve"]
