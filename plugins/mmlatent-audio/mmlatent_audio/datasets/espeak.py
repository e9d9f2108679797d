"""A small ctypes binding to espeak-ng, as shipped by the PyPI package ``espeakng-loader``.

::

    from mmlatent_audio.datasets.espeak import EspeakSession, sample_rate, synthesise
    wave = synthesise("seven", voice="en-us+f3", rate=160, pitch=60)   # float32 (samples,) in [-1, 1]
    sample_rate()                                                       # 22050 (Hz)
    with EspeakSession() as espeak:                                     # many texts, one library load
        waves = [espeak.synthesise(word, voice="en+m3") for word in ("one", "two")]

espeak-ng runs in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode: ``espeak_Synth`` returns when the whole text has
been rendered, the samples arriving through the synthesis callback in the calling thread.

espeak-ng keeps its state in C globals (the voice, the parameters, the callback, and a pitch
"flutter" phase and gain control that carry over from one text to the next, so the same text spoken
twice in one process differs slightly). An :class:`EspeakSession` therefore loads the library afresh
(``dlopen``), initialises it, and unloads it (``dlclose``) at the end: a session's output depends only
on what was synthesised in it, so :func:`synthesise` (one text per session, ~7 ms of set-up) is
reproducible. espeak-ng also seeds a random generator from the clock (some variants, e.g. ``f2``,
``f3``, ``f5``, use it): every synthesis reseeds it with ``espeak_ng_SetRandSeed`` (espeak-ng >= 1.52).
Sessions hold a process-wide lock; do not nest them.

Voices are spelled ``language[+variant]``: the language is a file under ``espeak-ng-data/lang``
(English ones: ``en`` (British), ``en-us``, ``en-us-nyc``, ``en-gb-scotland``, ``en-gb-x-rp``,
``en-gb-x-gbclan``, ``en-gb-x-gbcwmd``, ``en-029``; see :func:`list_languages`), the variant a file
under ``espeak-ng-data/voices/!v`` (``m1`` .. ``m8``, ``f1`` .. ``f5``, and named ones such as ``Andy``,
``belinda``, ``klatt``, ``whisper``; see :func:`list_variants`).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from types import TracebackType

import numpy as np

__all__ = [
    "ESPEAK_INSTALL_HINT",
    "EspeakError",
    "EspeakSession",
    "espeak_version",
    "list_languages",
    "list_variants",
    "sample_rate",
    "synthesise",
]

ESPEAK_INSTALL_HINT = "pip install espeakng-loader"

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # enum espeak_AUDIO_OUTPUT: PLAYBACK=0, RETRIEVAL=1, SYNCHRONOUS=2, SYNCH_PLAYBACK=3
_BUFFER_MS = 500  # length (ms) of the chunks handed to the callback
_POS_CHARACTER = 1  # espeak_POSITION_TYPE
_CHARS_UTF8 = 1  # espeakCHARS_UTF8
_ENDPAUSE = 0x1000  # espeakENDPAUSE: a short pause after the text
_EE_OK = 0  # espeak_ERROR
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}  # espeakRATE, espeakVOLUME, espeakPITCH, espeakRANGE
_RANDOM_SEED = 1
_LIMITS = {"rate": (80, 450), "pitch": (0, 100), "pitch_range": (0, 100), "volume": (0, 200)}

# int callback(short *wav, int numsamples, espeak_EVENT *events); return 0 to go on, 1 to abort
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.RLock()
_INFO: dict[str, object] = {}  # "sample_rate", "version": filled by the first session


class EspeakError(RuntimeError):
    """espeak-ng failed to load or initialise, or rejected a voice, a parameter or a text."""


def _loader():
    try:
        import espeakng_loader
    except ImportError:
        raise ImportError(
            f"speech synthesis needs espeak-ng from the 'espeakng-loader' package: {ESPEAK_INSTALL_HINT}"
        ) from None
    return espeakng_loader


def _declare(lib: ctypes.CDLL) -> None:
    """The argument and result types of the functions used (speak_lib.h)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    if hasattr(lib, "espeak_ng_SetRandSeed"):  # espeak-ng >= 1.52: deterministic noise
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None


def _unload(lib: ctypes.CDLL) -> None:
    """``dlclose`` the library (it is then really unloaded unless something else in the process holds it)."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


class EspeakSession:
    """espeak-ng loaded and initialised afresh, for one or more syntheses; a context manager.

    Holds the process-wide espeak lock from ``__enter__`` to ``__exit__``.
    """

    def __init__(self) -> None:
        self._lib: ctypes.CDLL | None = None
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._receive)  # referenced for as long as the library may call it
        self.sample_rate = 0
        self.data_path: Path | None = None

    def _receive(self, wav, numsamples: int, events) -> int:
        if wav and numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    def __enter__(self) -> EspeakSession:
        loader = _loader()
        _LOCK.acquire()
        try:
            library_path, data_path = loader.get_library_path(), loader.get_data_path()
            try:
                lib = ctypes.CDLL(library_path)
            except OSError as error:
                raise EspeakError(
                    f"cannot load espeak-ng from {library_path!r} ({error}); reinstall it: {ESPEAK_INSTALL_HINT}"
                ) from None
            _declare(lib)
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(data_path).encode(), 0)
            if rate <= 0:
                _unload(lib)
                raise EspeakError(f"espeak_Initialize failed (returned {rate}) with the data folder {data_path!r}")
            lib.espeak_SetSynthCallback(self._callback)
            self._lib, self.sample_rate, self.data_path = lib, int(rate), Path(data_path)
            _INFO.setdefault("sample_rate", int(rate))
            _INFO.setdefault("version", (lib.espeak_Info(None) or b"?").decode(errors="replace"))
        except BaseException:
            _LOCK.release()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if self._lib is not None:
                self._lib.espeak_Terminate()
                _unload(self._lib)
        finally:
            self._lib = None
            _LOCK.release()

    def synthesise(
        self,
        text: str,
        voice: str = "en",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        volume: int = 100,
        end_pause: bool = False,
    ) -> np.ndarray:
        """Speak ``text`` -> float32 ``(samples,)`` in [-1, 1] at :attr:`sample_rate` Hz (see :func:`synthesise`)."""
        lib = self._lib
        if lib is None:
            raise EspeakError("EspeakSession.synthesise() needs the session entered: `with EspeakSession() as s:`")
        settings = {"rate": rate, "pitch": pitch, "pitch_range": pitch_range, "volume": volume}
        for name, value in settings.items():
            low, high = _LIMITS[name]
            if not low <= int(value) <= high:
                raise ValueError(f"espeak {name} must be in {low}..{high}, got {value}")
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
            raise EspeakError(
                f"espeak-ng has no voice {voice!r}; voices are language[+variant], languages under "
                f"{str(self.data_path / 'lang')!r}, variants under {str(self.data_path / 'voices' / '!v')!r}"
            )
        for name, value in settings.items():
            parameter = _PARAMETERS["range" if name == "pitch_range" else name]
            if lib.espeak_SetParameter(parameter, int(value), 0) != _EE_OK:
                raise EspeakError(f"espeak_SetParameter({name}={value}) failed")
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(_RANDOM_SEED)  # else espeak seeds its noise from the clock
        encoded = text.encode("utf-8")
        flags = _CHARS_UTF8 | (_ENDPAUSE if end_pause else 0)
        self._chunks = []
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        lib.espeak_Synchronize()
        chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed (status {status}) on {text!r} with voice {voice!r}")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return samples.astype(np.float32) / 32768.0


def synthesise(
    text: str,
    voice: str = "en",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    volume: int = 100,
    end_pause: bool = False,
) -> np.ndarray:
    """Speak ``text`` -> float32 ``(samples,)`` in [-1, 1] at :func:`sample_rate` (22050) Hz.

    ``voice``: ``language[+variant]`` (e.g. ``"en"``, ``"en+f3"``, ``"en-us+m5"``); ``rate``: words per
    minute (80..450, espeak's default 175); ``pitch``: base pitch 0..100 (default 50 = the voice's
    own; each 50 steps halve or double it); ``pitch_range``: intonation range 0..100 (0 = monotone,
    default 50); ``volume``: amplitude 0..200 (default 100). ``end_pause`` adds espeak's pause after the
    text. The output keeps espeak's short leading and trailing silences ("seven": ~0.45-0.5 s at the
    default rate). Runs in its own :class:`EspeakSession`, so equal arguments give equal samples.
    """
    with EspeakSession() as session:
        return session.synthesise(text, voice, rate, pitch, pitch_range, volume, end_pause)


def sample_rate() -> int:
    """The rate (Hz) of :func:`synthesise`'s output: 22050 for espeak-ng."""
    if "sample_rate" not in _INFO:
        with EspeakSession():
            pass
    return int(_INFO["sample_rate"])


def espeak_version() -> str:
    """The espeak-ng version string (e.g. ``'1.52.0'``)."""
    if "version" not in _INFO:
        with EspeakSession():
            pass
    return str(_INFO["version"])


def list_variants() -> list[str]:
    """Names of the voice variants (files under ``espeak-ng-data/voices/!v``), sorted."""
    folder = Path(_loader().get_data_path()) / "voices" / "!v"
    return sorted(path.name for path in folder.iterdir() if path.is_file())


def list_languages(prefix: str = "en") -> list[str]:
    """Language voices (files under ``espeak-ng-data/lang``) whose name starts with ``prefix``; lowercase, sorted."""
    folder = Path(_loader().get_data_path()) / "lang"
    names = {p.name.lower() for p in folder.rglob("*") if p.is_file() and p.name.lower().startswith(prefix.lower())}
    return sorted(names)
