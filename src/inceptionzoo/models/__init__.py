"""Model families; importing this package imports every module in it, so a new family file
registers its models without being listed anywhere."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
del _module
