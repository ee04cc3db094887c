"""MXNet's OpenMP threads: checked thread variables, one thread per physical core, and the one
core count of the package.

MXNet 1.9.1 fixes its operators' OpenMP threads when its library loads (``src/engine/openmp.cc``):
without ``OMP_NUM_THREADS`` or ``MXNET_OMP_MAX_THREADS`` it takes half the logical CPUs of an x86
machine, assuming two hyper-threads per core. On a machine without hyper-threading that is half
the cores (one of two here), and every convolution runs at half speed (docs/benchmarks.md,
"Training speed at ImageNet size"). Importing :mod:`inceptionzoo` (:func:`configure`):

- refuses a thread variable MXNet would abort on (``OMP_NUM_THREADS=abc`` killed the process
  with SIGABRT inside MXNet's import) with one :class:`~inceptionzoo.errors.InceptionZooError`
  (the ``inceptionzoo`` command prints it as one line and exits 2);
- before MXNet loads, sets ``MXNET_OMP_MAX_THREADS`` to the number of physical cores this
  process may run on, unless the user set either variable, and :data:`CHOSEN_VARIABLE` to the
  same count: a child process inherits both and so tells the package's choice from a user's
  setting (:func:`chosen_by_package`; it chooses again for itself, and ``inceptionzoo launch``
  gives its local workers their share of the cores);
- after MXNet loaded (``import mxnet`` first, the order most scripts have), raises MXNet's
  thread limit to that count (:func:`raise_loaded_threads`): ``MXSetNumOMPThreads``, which
  libmxnet exports, only sets the calling thread's OpenMP count and cannot lift the limit MXNet
  fixed at load, so its operators (run on the engine's worker threads) would stay on half the
  cores. This reaches the worker threads MXNet starts afterwards, i.e. when no CPU operator ran
  before inceptionzoo was imported; MXNet's own choice and a user's variables are otherwise
  left alone;
- sets ``MXNET_CPU_PARALLEL_SIZE`` (:data:`COPY_VARIABLE`) so that MXNet copies arrays between
  NumPy and NDArrays with ``memcpy`` on the calling thread, unless the user set it
  (:func:`set_serial_copies`). MXNet 1.9.1 copies an array of 200,000 elements or more with an
  OpenMP loop on the calling thread (``common::ParallelCopy``): ``mx.nd.array`` of one MNIST
  batch of 256, or of one 299x299 image, starts a second OpenMP thread team beside the engine's,
  and from then on every operator pays thread wake-ups: a batch of 1 ran 6.5x slower (2,800 ->
  420 images/s, 7.7k -> 58.9k voluntary context switches) for the rest of the process
  (docs/benchmarks.md, "The runtime race under mixed batch sizes"). MXNet reads the variable
  at its first such copy, so this holds in either import order unless a large array was copied
  before inceptionzoo was imported;
- gives the thread that imports the package (the user's) one OpenMP thread
  (:func:`serial_calling_thread`), unless MXNet runs its operators on that thread
  (``MXNET_ENGINE_TYPE=NaiveEngine``). Copies are not the only OpenMP work MXNet does on the
  calling thread: ``asnumpy()`` of an array oneDNN holds in its own layout (a convolution's
  output, a weight after an inference pass) reorders it there with oneDNN's OpenMP loop, which
  starts the same second team: after one ``asnumpy()`` of a convolution's output, or an
  ``export(..., onnx=True)`` (which reads the weights), the MNIST network's batch 1 took 2.5 ms
  instead of 0.5 for the rest of the process (docs/benchmarks.md, "What a probe sees"). With
  more OpenMP threads than CPUs, libgomp stops spinning between parallel regions, and every
  region of every operator then wakes its threads through the kernel.

:func:`physical_cores` is the package's one core count (affinity mask + sysfs topology): the
launcher's per-worker share, ONNX Runtime's thread race and the decoding threads use it.
"""
import ctypes
import os
import platform
import re
import sys
import warnings

from .errors import InceptionZooError

#: the variables MXNet 1.9.1 reads for its thread count; a user's value of either is kept
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")
#: MXNet copies arrays of at least this many elements with an OpenMP loop
COPY_VARIABLE = "MXNET_CPU_PARALLEL_SIZE"
#: its value here: no copy is that large (MXNet reads it as a 32-bit int)
SERIAL_COPY_SIZE = str(2 ** 31 - 1)
#: the largest thread count taken from a variable (libgomp aborts when it cannot start them)
MAX_THREADS = 4096
#: what MXNet 1.9.1 and libgomp both read as one thread count: an integer, maybe a sign, spaces
_COUNT = re.compile(r"\s*\+?[0-9]+\s*")
#: set beside ``MXNET_OMP_MAX_THREADS``, to the same count, when this package chose it
CHOSEN_VARIABLE = "INCEPTIONZOO_CHOSEN_OMP_THREADS"
#: MXNet 1.9.1's pointer to its OpenMP settings (``OpenMP *__init_omp__``, src/engine/openmp.cc)
_OPENMP_SYMBOL = "_ZN5mxnet6engine12__init_omp__E"


def _usable_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS): every CPU
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus=None, sysfs="/sys/devices/system/cpu"):
    """Number of distinct physical cores among ``cpus`` (hyper-threads of one core count once):
    the package's one core count.

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


def check_thread_variables(environ=None):
    """Refuse a thread variable that MXNet 1.9.1 would abort on or misread.

    MXNet reads both variables as one integer when it loads and throws (SIGABRT, no message to
    Python) on ``abc``, ``2.5`` or an OpenMP list such as ``4,2`` (legal for OpenMP, not for
    MXNet); ``0`` and ``-1`` make libgomp ignore the variable with a warning (and
    ``MXNET_OMP_MAX_THREADS=0`` lifts MXNet's limit); a huge count aborts when libgomp cannot
    start the threads.

    Parameters
    ----------
    environ : dict, optional
        Default ``os.environ``.

    Raises
    ------
    InceptionZooError
        Naming the variable, its value and what is expected.
    """
    environ = os.environ if environ is None else environ
    for var in THREAD_VARIABLES:
        text = environ.get(var)
        if text is not None and not (_COUNT.fullmatch(text)
                                     and 1 <= int(text) <= MAX_THREADS):
            raise InceptionZooError(
                f"{var}={text!r}: expected a whole number of threads in 1..{MAX_THREADS}, e.g. "
                f"{var}={physical_cores()} (MXNet 1.9.1 reads it as one integer: no list such "
                "as 4,2, no fraction, no 0)")


def chosen_by_package(environ=None):
    """Whether ``MXNET_OMP_MAX_THREADS`` in ``environ`` (default ``os.environ``) is the count
    this package chose, here at import (:data:`SET_AT_IMPORT`) or in a parent process
    (:data:`CHOSEN_VARIABLE` holds the same value), not the user's: a bool."""
    environ = os.environ if environ is None else environ
    value = environ.get("MXNET_OMP_MAX_THREADS")
    return value is not None and (value == environ.get(CHOSEN_VARIABLE) or (
        SET_AT_IMPORT is not None and value == str(SET_AT_IMPORT)))


def user_thread_variables(environ=None):
    """The thread variables of ``environ`` that the user set: every one but an
    ``MXNET_OMP_MAX_THREADS`` this package chose (:func:`chosen_by_package`).

    Parameters
    ----------
    environ : dict, optional
        Default ``os.environ``.

    Returns
    -------
    dict
    """
    environ = os.environ if environ is None else environ
    return {var: environ[var] for var in THREAD_VARIABLES if var in environ
            and not (var == "MXNET_OMP_MAX_THREADS" and chosen_by_package(environ))}


def _mxnet_guess(cpus):
    """The thread limit MXNet 1.9.1 takes without a variable: the CPUs OpenMP sees, halved on
    x86."""
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        return cpus >> 1
    return cpus


def loaded_threads(mx):
    """MXNet's operator thread limit (``omp_thread_max_`` of its OpenMP settings), read from
    the loaded libmxnet 1.9.1.

    Parameters
    ----------
    mx : module
        The imported ``mxnet``.

    Returns
    -------
    (ctypes.c_int or None, str or None)
        The limit, writable in place, or None and why it cannot be reached (another MXNet
        version, a library without the symbol, settings not laid out as 1.9.1's: ``bool
        enabled_; int omp_thread_max_; int reserve_cores_; bool omp_num_threads_set_...``).
    """
    if getattr(mx, "__version__", None) != "1.9.1":
        return None, f"MXNet {getattr(mx, '__version__', '?')} is not 1.9.1"
    try:
        address = ctypes.c_void_p.in_dll(mx.base._LIB, _OPENMP_SYMBOL).value
    except (AttributeError, ValueError):
        return None, "libmxnet does not export its OpenMP settings"
    if not address:
        return None, "MXNet's OpenMP settings are not initialised"
    raw = bytes((ctypes.c_uint8 * 16).from_address(address))
    limit = ctypes.c_int.from_address(address + 4)
    reserve = int.from_bytes(raw[8:12], sys.byteorder, signed=True)
    if raw[0] != 1 or raw[1:4] != b"\0\0\0" or raw[12:16] != b"\0\0\0\0" or reserve != 0 \
            or not 0 <= limit.value <= MAX_THREADS:
        return None, "MXNet's OpenMP settings are not laid out as expected"
    return limit, None


def raise_loaded_threads(mx, cores=None):
    """Give an MXNet loaded before this package ``cores`` operator threads (see the module
    docstring), when no thread variable is set.

    Parameters
    ----------
    mx : module
        The imported ``mxnet``.
    cores : int, optional
        Default :func:`physical_cores`.

    Returns
    -------
    (int or None, str or None)
        The new limit, or None and why MXNet was left alone (None: nothing to change).
    """
    cores = physical_cores() if cores is None else cores
    limit, why = loaded_threads(mx)
    if limit is None:
        return None, why
    if limit.value != _mxnet_guess(len(_usable_cpus())):  # not MXNet's own choice: keep it
        return None, f"MXNet's thread limit is {limit.value}, not its default"
    if limit.value == 0 or limit.value >= cores:  # 0: MXNet applies no limit
        return None, None
    limit.value = cores
    mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(cores))  # the calling thread (NaiveEngine)
    return cores, None


def serial_calling_thread(mx, environ=None):
    """One OpenMP thread for the calling thread's own parallel loops (``MXSetNumOMPThreads``
    sets the calling thread's count only), so that what MXNet runs there (copies, oneDNN
    reorders in ``asnumpy()``) starts no second thread team beside the engine's (see the module
    docstring). MXNet's operators run on the engine's worker threads and keep their count.

    Parameters
    ----------
    mx : module
        The imported ``mxnet``.
    environ : dict, optional
        Default ``os.environ``.

    Returns
    -------
    bool
        Whether it was set: not when ``MXNET_ENGINE_TYPE`` names the NaiveEngine, which runs
        every operator on the calling thread.
    """
    environ = os.environ if environ is None else environ
    if environ.get("MXNET_ENGINE_TYPE", "").startswith("Naive"):
        return False
    mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(1))
    return True


def set_default_threads(environ=None, modules=None, cores=None):
    """Check the thread variables and give MXNet one thread per physical core unless the user
    set one of :data:`THREAD_VARIABLES`: through ``MXNET_OMP_MAX_THREADS`` (and
    :data:`CHOSEN_VARIABLE`) before MXNet loads, through :func:`raise_loaded_threads` after. An
    MXNet loaded already with a variable set has accepted it: nothing is checked then. The
    count a parent process's inceptionzoo chose (inherited) is not the user's: it is chosen
    again for this process before MXNet loads (a user's ``OMP_NUM_THREADS`` then holds).

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
    if "mxnet" not in modules and chosen_by_package(environ):
        del environ["MXNET_OMP_MAX_THREADS"], environ[CHOSEN_VARIABLE]
    if any(v in environ for v in THREAD_VARIABLES):
        if "mxnet" not in modules:
            check_thread_variables(environ)
        return None
    cores = physical_cores() if cores is None else cores
    if "mxnet" in modules:
        threads, why = raise_loaded_threads(modules["mxnet"], cores)
        if why:
            warnings.warn(f"MXNet was imported before inceptionzoo and its operator threads "
                          f"could not be raised to the {cores} cores ({why}): set "
                          f"MXNET_OMP_MAX_THREADS={cores}, or import inceptionzoo first",
                          RuntimeWarning, stacklevel=3)
        return threads
    environ["MXNET_OMP_MAX_THREADS"] = environ[CHOSEN_VARIABLE] = str(cores)
    return cores


def set_serial_copies(environ=None):
    """Make MXNet copy arrays with ``memcpy`` on the calling thread (see the module text):
    :data:`COPY_VARIABLE` set to :data:`SERIAL_COPY_SIZE` unless the user set it.

    Parameters
    ----------
    environ : dict, optional
        The environment to change; default ``os.environ`` (MXNet reads it at its first large
        copy; child processes inherit it).

    Returns
    -------
    bool
        Whether it was set here.
    """
    environ = os.environ if environ is None else environ
    if COPY_VARIABLE in environ:
        return False
    environ[COPY_VARIABLE] = SERIAL_COPY_SIZE
    return True


def _cli_command(argv=None, orig_argv=None):
    """``'inceptionzoo'`` or ``'inceptionzoo COMMAND'`` when this process runs the
    ``inceptionzoo`` command (its console script or ``python -m inceptionzoo.cli``), else
    None."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    prog = re.sub(r"(-script\.pyw?|\.exe)$", "", os.path.basename(argv[0] if argv else ""))
    if prog == "inceptionzoo":
        args = argv[1:]
    elif "-m" in orig_argv and orig_argv[orig_argv.index("-m") + 1:][:1] == ["inceptionzoo.cli"]:
        args = orig_argv[orig_argv.index("-m") + 2:]
    else:
        return None
    return "inceptionzoo" + (f" {args[0]}" if args[:1] and args[0].isidentifier() else "")


def configure():
    """What importing the package runs first (:func:`set_serial_copies`,
    :func:`set_default_threads`); a bad thread
    variable is one line and exit status 2 for the ``inceptionzoo`` command, an
    :class:`~inceptionzoo.errors.InceptionZooError` for an import."""
    global SET_AT_IMPORT
    set_serial_copies()
    try:
        threads = set_default_threads()
    except InceptionZooError as err:
        command = _cli_command()
        if command is None:
            raise
        print(f"{command}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if not MXNET_LOADED_FIRST:
        SET_AT_IMPORT = threads


#: whether MXNet was loaded before this package
MXNET_LOADED_FIRST = "mxnet" in sys.modules
#: the ``MXNET_OMP_MAX_THREADS`` this package set in ``os.environ`` at import (None: none)
SET_AT_IMPORT = None
