"""Model families; importing this package imports every module in it, so a new family file
registers its models without being listed anywhere."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module

# the network classes, as docs/api.md names them (`from inceptionzoo.models import GoogLeNet`)
from .googlenet import GoogLeNet  # noqa: E402
from .inception_mnist import InceptionMNIST  # noqa: E402
from .inception_v3 import InceptionV3  # noqa: E402
from .inception_v4 import InceptionResNetV2, InceptionV4  # noqa: E402

__all__ = ["GoogLeNet", "InceptionMNIST", "InceptionV3", "InceptionV4", "InceptionResNetV2"]
