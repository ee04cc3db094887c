"""MXNet's OpenMP thread count: one thread per physical core, set before MXNet loads.

MXNet 1.9.1 fixes its operators' OpenMP threads when its library loads (``src/engine/openmp.cc``):
without ``OMP_NUM_THREADS`` or ``MXNET_OMP_MAX_THREADS`` it takes half the logical CPUs of an x86
machine, assuming two hyper-threads per core. On a machine without hyper-threading that is half
the cores (one of two here), and every convolution runs at half speed (docs/benchmarks.md,
"Training speed at ImageNet size"). Importing :mod:`inceptionzoo` before MXNet sets
``MXNET_OMP_MAX_THREADS`` to the number of physical cores this process may run on, unless the
user set either variable; it cannot change a process whose MXNet is already loaded.
"""
import os
import platform
import sys

#: the variables MXNet 1.9.1 reads for its thread count; a user's value of either is kept
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")


def _usable_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS): every CPU
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus=None, sysfs="/sys/devices/system/cpu"):
    """Number of distinct physical cores among ``cpus`` (hyper-threads of one core count once).

    Parameters
    ----------
    cpus : list of int, optional
        Logical CPU numbers; default: those this process may run on.
    sysfs : str
        Folder with ``cpuN/topology/physical_package_id`` and ``core_id`` (Linux); where they
        cannot be read every logical CPU counts as a core.

    Returns
    -------
    int
        At least 1.
    """
    cpus = _usable_cpus() if cpus is None else list(cpus)
    cores = set()
    for cpu in cpus:
        topology = os.path.join(sysfs, f"cpu{cpu}", "topology")
        try:
            with open(os.path.join(topology, "physical_package_id")) as f:
                package = f.read().strip()
            with open(os.path.join(topology, "core_id")) as f:
                core = f.read().strip()
        except OSError:
            return max(len(cpus), 1)
        cores.add((package, core))
    return max(len(cores), 1)


def set_default_threads(environ=None, modules=None, cores=None):
    """Set ``MXNET_OMP_MAX_THREADS`` to the number of physical cores, unless MXNet is loaded
    already (too late: it read its setting) or the user set one of :data:`THREAD_VARIABLES`.

    Parameters
    ----------
    environ : dict, optional
        The environment to change; default ``os.environ`` (child processes inherit it).
    modules : dict, optional
        The loaded modules; default ``sys.modules``.
    cores : int, optional
        The thread count; default :func:`physical_cores`.

    Returns
    -------
    int or None
        The thread count set, or None when left alone.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "mxnet" in modules or any(v in environ for v in THREAD_VARIABLES):
        return None
    cores = physical_cores() if cores is None else cores
    environ["MXNET_OMP_MAX_THREADS"] = str(cores)
    return cores


def threads_note(environ=None, modules_before=None, cores=None):
    """A note for a process whose MXNet was loaded before :mod:`inceptionzoo` without a thread
    setting, on a machine where MXNet's own guess (half the logical CPUs) leaves cores idle; else
    None.

    Parameters
    ----------
    environ : dict, optional
        Default ``os.environ``.
    modules_before : bool, optional
        Whether MXNet was loaded before inceptionzoo; default: as recorded at import.
    cores : int, optional
        Default :func:`physical_cores`.

    Returns
    -------
    str or None
    """
    environ = os.environ if environ is None else environ
    before = MXNET_LOADED_FIRST if modules_before is None else modules_before
    if not before or any(v in environ for v in THREAD_VARIABLES):
        return None
    cores = physical_cores() if cores is None else cores
    guess = len(_usable_cpus())
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        guess = max(guess // 2, 1)  # MXNet halves the count on x86 only
    if guess >= cores:
        return None
    return (f"note: MXNet was imported before inceptionzoo and runs {guess} OpenMP thread(s) on "
            f"{cores} cores: set MXNET_OMP_MAX_THREADS={cores} (or import inceptionzoo first) "
            f"for up to {cores / guess:.1f}x faster training")


#: whether MXNet was loaded before this package (then its own thread count holds)
MXNET_LOADED_FIRST = "mxnet" in sys.modules
