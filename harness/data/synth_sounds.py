"""Signal generators of the synthetic acoustic-scene corpus: textures, events, long cues, rooms, channels.

Every scene is a procedural mixture (see `RECIPES`): a coloured-noise background with a
class-specific spectral envelope and slow amplitude modulation, sparse Poisson events whose
types are shared across classes at different rates (so no event type alone names a class),
and long cues that only show over seconds (announcements with a period, pass-bys, engine
ramps, rhythmic hammering, a musical beat). A session draws its own variant of all of these
(`draw_session`), so clips of one session resemble each other; each city colours the whole
mixture with its own smooth channel EQ (`city_channel_db`), a domain shift.

All randomness comes from the `numpy.random.Generator` passed in, so a caller that seeds one
generator per session and per clip gets byte-identical audio whatever the order of rendering.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType

import numpy as np
from scipy import fft as sfft

CLASSES: tuple[str, ...] = (
    "Bus", "Airport", "Metro", "Restaurant", "Shopping mall",
    "Public square", "Urban park", "Traffic street", "Construction site", "Bar",
)
"""The 10 official classes, in the order of the official baseline."""

F32 = np.float32
Array = np.ndarray


# --------------------------------------------------------------------------- primitives


def rms(x: Array) -> float:
    """Root mean square (float32 pairwise sum: fast and order-deterministic)."""
    return float(np.sqrt(float(np.square(x).sum()) / max(x.shape[0], 1) + 1e-20))


def db(x: float) -> float:
    """Amplitude factor of `x` decibels."""
    return float(10.0 ** (x / 20.0))


def add_into(buf: Array, sig: Array, start: int) -> None:
    """Add `sig` into `buf` from sample `start`; parts before 0 or past the end are dropped."""
    a, b = max(start, 0), min(start + sig.shape[0], buf.shape[0])
    if b > a:
        buf[a:b] += sig[a - start:b - start]


def ramp_window(n: int, sr: int, attack: float, release: float) -> Array:
    """Raised-cosine onset and offset so events do not click (which would be a spurious cue)."""
    w = np.ones(n, dtype=F32)
    na, nr = min(n // 2, max(1, int(attack * sr))), min(n // 2, max(1, int(release * sr)))
    w[:na] = 0.5 - 0.5 * np.cos(np.pi * np.arange(na, dtype=F32) / na)
    w[n - nr:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, nr + 1, dtype=F32) / nr)
    return w


def smooth_curve(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> Array:
    """A random curve of unit variance that changes about `rate_hz` times a second.

    Cosine-interpolated random knots, evaluated every 32 samples and linearly filled in (the curve
    is far slower than that, and this keeps it cheap).
    """
    step = sr / max(rate_hz, 1e-3)
    coarse = np.arange(0, n + 32, 32, dtype=np.float64)
    t = coarse / step + rng.uniform()
    knots = rng.standard_normal(int(t[-1]) + 3)
    i = t.astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (t - i))
    vals = knots[i] * (1.0 - w) + knots[i + 1] * w
    return np.interp(np.arange(n, dtype=np.float64), coarse, vals).astype(F32)


def log_envelope_db(freqs: Array, tilt_db_oct: float, bumps: tuple[tuple[float, float, float], ...]) -> Array:
    """Log-magnitude (dB) of a spectral envelope: a slope around 1 kHz plus Gaussian bumps in log frequency."""
    f = np.maximum(freqs, 20.0)
    out = tilt_db_oct * np.log2(f / 1000.0)
    for fc, width_oct, gain_db in bumps:
        out = out + gain_db * np.exp(-0.5 * (np.log2(f / fc) / width_oct) ** 2)
    out = out + np.minimum(0.0, 18.0 * np.log2(f / 35.0))  # nothing real lives below ~30 Hz
    return out


def shaped_noise(rng: np.random.Generator, n: int, mag: Array) -> Array:
    """Gaussian noise of length n with spectral magnitude `mag` (n//2+1 bins), unit RMS; one inverse FFT."""
    k = n // 2 + 1
    spec = rng.standard_normal(2 * k, dtype=F32).view(np.complex64)
    spec *= mag
    spec[0] = 0.0
    x = sfft.irfft(spec, n)
    x *= F32(1.0 / rms(x))
    return x


WAVETABLE = 2048  # a power of two: the phase index wraps with a bit mask


def wavetable(amps: Array, phases: Array) -> Array:
    """One period of sum_k amps[k-1] sin(k t + phases[k-1]), WAVETABLE + 1 samples (the last repeats the first)."""
    kmax = len(amps)
    spec = np.zeros(WAVETABLE // 2 + 1, dtype=np.complex128)
    rotation = np.exp(1j * (np.asarray(phases) - np.pi / 2))  # sin(x + phase) = cos(x + phase - pi/2)
    spec[1:kmax + 1] = np.asarray(amps, dtype=np.float64) * rotation * (WAVETABLE / 2)
    table = np.fft.irfft(spec, WAVETABLE).astype(F32)
    return np.append(table, table[0])


def read_wavetable(table: Array, f0: Array | float, n: int, sr: int) -> Array:
    """Play `table` at fundamental f0 (Hz, constant or per sample) with linear interpolation."""
    step = WAVETABLE / sr
    if np.ndim(f0) == 0:
        pos = np.arange(1, n + 1, dtype=np.float64) * (float(f0) * step)
    else:
        pos = np.cumsum(np.asarray(f0, dtype=np.float64) * step)
    i = pos.astype(np.int64)
    frac = (pos - i).astype(F32)
    i &= WAVETABLE - 1
    lo = table[i]
    return lo + frac * (table[i + 1] - lo)


def harmonic(f0: Array | float, n: int, sr: int, amps: Array, rng: np.random.Generator) -> Array:
    """Sum of harmonics k*f0(t) with amplitudes `amps[k-1]` and random start phases, stopping below Nyquist.

    Wavetable synthesis: one period is built with an inverse FFT and read at the running phase, so
    the cost does not grow with the number of harmonics (this is the generator's hot spot).
    """
    top = float(f0) if np.ndim(f0) == 0 else float(np.max(f0)) if n else 0.0
    kmax = min(len(amps), int(0.45 * sr / top) if top > 0 else 0, WAVETABLE // 8)
    if kmax == 0 or n == 0:
        return np.zeros(n, dtype=F32)
    return read_wavetable(wavetable(amps[:kmax], rng.uniform(0, 2 * np.pi, kmax)), f0, n, sr)


def normalised(x: Array) -> Array:
    return x / F32(rms(x) + 1e-9)


# --------------------------------------------------------------------------- sparse events
# Each event renderer returns a short unit-RMS clip; the mixer scales it by the session's SNR.


def ev_beep(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """Card readers, scanners, door warnings: a pure tone, single or repeated."""
    f = sp["beep_f"] * 2.0 ** rng.normal(0, 0.04)
    dur = rng.uniform(0.06, 0.22)
    reps = int(rng.integers(1, 4))
    gap = rng.uniform(0.05, 0.12)
    m = int(dur * sr)
    one = np.sin(2 * np.pi * f * np.arange(m) / sr).astype(F32) * ramp_window(m, sr, 0.005, 0.01)
    out = np.zeros(int((dur + gap) * sr) * reps, dtype=F32)
    for r in range(reps):
        add_into(out, one, int(r * (dur + gap) * sr))
    return normalised(out)


# (F1, F2) of eight vowels, Hz: a voice is a harmonic source through one of these per syllable.
VOWELS = ((280, 2250), (400, 1950), (550, 1750), (700, 1550), (750, 1200), (600, 1000), (450, 900), (320, 800))


@lru_cache(maxsize=2048)
def _vowel_table(vowel: int, semitone: int) -> Array:
    """The wavetable of a vowel at f0 = 55 Hz * 2^(semitone/12): harmonics up to 3.8 kHz shaped by two formants.

    Cached (fixed phases), since building a table per syllable was the generator's main cost.
    """
    f0 = 55.0 * 2.0 ** (semitone / 12.0)
    f1, f2 = VOWELS[vowel]
    k = np.arange(1, int(3800 / f0) + 1)
    fk = k * f0
    amps = (1.0 / (1.0 + ((fk - f1) / 90.0) ** 2) + 0.6 / (1.0 + ((fk - f2) / 140.0) ** 2) + 0.03) / np.sqrt(k)
    phases = np.random.default_rng([vowel, semitone]).uniform(0, 2 * np.pi, len(k))
    return wavetable(amps, phases)


def _syllable(rng: np.random.Generator, f0: float, sr: int) -> Array:
    n = int(rng.uniform(0.08, 0.26) * sr)
    f0 = min(max(f0, 65.0), 500.0)  # deep basses to small children; also keeps the table index valid
    semitone = int(round(12.0 * math.log2(f0 / 55.0)))
    contour = f0 * (1.0 + rng.normal(0, 0.06) * np.linspace(-1.0, 1.0, n))
    voiced = read_wavetable(_vowel_table(int(rng.integers(len(VOWELS))), semitone), contour, n, sr)
    voiced *= ramp_window(n, sr, 0.02, 0.04)
    if rng.uniform() < 0.4:  # a fricative onset: a short burst of high-passed noise
        m = min(n, int(rng.uniform(0.02, 0.06) * sr))
        burst = np.diff(rng.standard_normal(m + 1, dtype=F32)) * np.linspace(1, 0, m, dtype=F32)
        voiced[:m] += F32(0.3 * rms(voiced) / (rms(burst) + 1e-9)) * burst
    return voiced


def ev_voice(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """An utterance: 2-7 syllables of a harmonic source through random formants, at ~4 syllables/s."""
    f0 = sp["voice_f0"] * 2.0 ** rng.normal(0, 0.3)
    parts = []
    for _ in range(int(rng.integers(2, 8))):
        parts.append(_syllable(rng, f0 * 2.0 ** rng.normal(0, 0.05), sr))
        parts.append(np.zeros(int(rng.uniform(0.02, 0.12) * sr), dtype=F32))
    return normalised(np.concatenate(parts))


def _note(rng: np.random.Generator, f: float, dur: float, timbre: float, sr: int, pluck: bool) -> Array:
    n = int(dur * sr)
    amps = 1.0 / np.arange(1, 9) ** timbre
    x = harmonic(f, n, sr, amps, rng)
    t = np.arange(n, dtype=F32) / sr
    env = np.exp(-t / (0.25 * dur)) if pluck else np.ones(n, dtype=F32)
    return x * env.astype(F32) * ramp_window(n, sr, 0.01, 0.05)


PENTATONIC = (0, 2, 4, 7, 9, 12, 14)


def ev_music(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """A short melodic phrase on the session's key and tempo (radios, buskers, shop music)."""
    beat = sp["beat_s"]
    notes = int(rng.integers(4, 10))
    out = np.zeros(int((notes + 2) * beat * sr), dtype=F32)
    t = 0.0
    for _ in range(notes):
        d = beat * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        f = sp["music_key"] * 2.0 ** (PENTATONIC[int(rng.integers(len(PENTATONIC)))] / 12.0)
        add_into(out, _note(rng, f, d, sp["timbre"], sr, pluck=bool(rng.uniform() < 0.5)), int(t * sr))
        t += d
    return normalised(out[: max(1, int(t * sr))])


def _impact(rng: np.random.Generator, fc: float, tau: float, modes: int, noise: float, sr: int) -> Array:
    """Damped inharmonic modes plus a noise attack: dishes, glasses, metal, footsteps."""
    n = int(min(5 * tau + 0.02, 1.2) * sr)
    t = np.arange(n, dtype=F32) / sr
    out = np.zeros(n, dtype=F32)
    for _ in range(modes):
        f = fc * 2.0 ** rng.normal(0, 0.4)
        ring = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)).astype(F32)
        out += ring * np.exp(-t / (tau * rng.uniform(0.5, 1.5))).astype(F32)
    m = min(n, int(0.008 * sr))
    out[:m] += noise * rng.standard_normal(m).astype(F32) * np.linspace(1, 0, m, dtype=F32)
    return normalised(out)


def ev_dish(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """Cutlery and plates: short bright inharmonic clatter."""
    return _impact(rng, rng.uniform(2200, 5500), rng.uniform(0.03, 0.12), 3, 1.5, sr)


def ev_glass(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """Glasses: two high modes that ring for a few hundred ms."""
    return _impact(rng, rng.uniform(3000, 6500), rng.uniform(0.15, 0.4), 2, 0.3, sr)


def ev_metal(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """A metal hit around the session's resonance (tools, scaffolding)."""
    return _impact(rng, sp["metal_fc"] * 2.0 ** rng.normal(0, 0.2), rng.uniform(0.06, 0.3), 4, 1.0, sr)


def ev_footstep(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """A low, dull thud: a short smoothed noise burst plus a low mode."""
    n = int(rng.uniform(0.04, 0.09) * sr)
    burst = np.convolve(rng.standard_normal(n + 7), np.ones(8) / 8, mode="valid")[:n].astype(F32)
    burst *= np.exp(-np.arange(n, dtype=F32) / (0.25 * n))
    return normalised(burst + 0.5 * _impact(rng, rng.uniform(120, 400), 0.02, 1, 0.0, sr)[:n])


def ev_rattle(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """Loose panels and rail joints: a burst of 8-30 tiny clicks over a fraction of a second."""
    dur = rng.uniform(0.15, 0.6)
    out = np.zeros(int(dur * sr) + 200, dtype=F32)
    fc = rng.uniform(400, 2500)
    for _ in range(int(rng.integers(8, 30))):
        add_into(out, _impact(rng, fc, 0.004, 1, 2.0, sr)[:200], int(rng.uniform(0, dur) * sr))
    return normalised(out)


def ev_chirp(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """A bird call: 2-8 fast frequency sweeps around the session's species pitch."""
    base = sp["bird_f"]
    out = []
    for _ in range(int(rng.integers(2, 9))):
        d = rng.uniform(0.03, 0.12)
        n = int(d * sr)
        f = base * 2.0 ** (rng.uniform(-0.4, 0.4) * np.sin(np.linspace(0, np.pi * rng.uniform(0.5, 2), n)))
        out.append(harmonic(f, n, sr, np.array([1.0, 0.2]), rng) * ramp_window(n, sr, 0.005, 0.01))
        out.append(np.zeros(int(rng.uniform(0.03, 0.15) * sr), dtype=F32))
    return normalised(np.concatenate(out))


def ev_horn(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """A car horn: two detuned square-ish tones for a fraction of a second."""
    n = int(rng.uniform(0.15, 0.7) * sr)
    amps = np.array([1.0, 0.05, 0.33, 0.05, 0.2, 0.05, 0.14])
    x = harmonic(sp["horn_f"], n, sr, amps, rng) + harmonic(sp["horn_f"] * 1.19, n, sr, amps, rng)
    return normalised(x * ramp_window(n, sr, 0.01, 0.02))


def ev_suitcase(rng: np.random.Generator, sp: Mapping[str, float], sr: int) -> Array:
    """A rolling suitcase: regular wheel clicks at 8-16 Hz for 1-3 s."""
    dur, rate = rng.uniform(1.0, 3.0), rng.uniform(8, 16)
    out = np.zeros(int(dur * sr) + 400, dtype=F32)
    click = _impact(rng, rng.uniform(300, 1200), 0.01, 2, 1.0, sr)[:400]
    for k in range(int(dur * rate)):
        add_into(out, click * F32(rng.uniform(0.6, 1.0)), int((k / rate + rng.normal(0, 0.003)) * sr))
    return normalised(out * ramp_window(out.shape[0], sr, 0.2, 0.2))


EVENTS: Mapping[str, Callable[[np.random.Generator, Mapping[str, float], int], Array]] = MappingProxyType({
    "beep": ev_beep, "voice": ev_voice, "music": ev_music, "dish": ev_dish, "glass": ev_glass,
    "metal": ev_metal, "footstep": ev_footstep, "rattle": ev_rattle, "chirp": ev_chirp,
    "horn": ev_horn, "suitcase": ev_suitcase,
})


# --------------------------------------------------------------------------- long cues (seconds)
# Each returns a full-length clip at its level relative to a unit-RMS background.


@dataclass(frozen=True)
class Cue:
    """A long cue in a recipe: present in a clip with probability `prob`; `period`/`rate` set its rhythm."""

    name: str
    prob: float
    level_db: float = 0.0
    period: float = 0.0
    rate: float = 0.0
    variant: str = ""


def cue_engine(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Engine harmonics following an rpm profile: ramps of 1.5-3 s, gear-shift drops, idling (Bus).

    `variant="idle"`: a steady idling diesel (Construction, stopped traffic).
    """
    T = n / sr
    idle = sp["engine_f0"]
    if cue.variant == "idle":
        f0 = idle * (1.0 + 0.02 * smooth_curve(rng, n, sr, 0.5))
        level = np.ones(n, dtype=F32)
    else:
        knots_t, knots_f = [-rng.uniform(0, 2.0)], [idle * rng.uniform(1.0, 2.0)]
        while knots_t[-1] < T:
            state = rng.choice(["accel", "accel", "idle", "cruise"])
            if state == "accel":
                d = rng.uniform(1.5, 3.0)
                lo = max(knots_f[-1], idle)
                knots_t += [knots_t[-1] + d, knots_t[-1] + d + 0.25]
                knots_f += [lo * rng.uniform(1.8, 2.6), lo * rng.uniform(1.1, 1.4)]
            else:
                d = rng.uniform(0.8, 2.5)
                knots_t.append(knots_t[-1] + d)
                knots_f.append(idle if state == "idle" else knots_f[-1] * rng.uniform(0.85, 1.0))
        t = np.arange(n) / sr
        f0 = np.interp(t, knots_t, knots_f)
        level = (0.5 + 0.5 * (f0 - idle) / (f0.max() - idle + 1e-6)).astype(F32)
    amps = 1.0 / np.arange(1, 13) ** 0.8
    x = harmonic(f0, n, sr, amps, rng) * level
    return F32(db(cue.level_db)) * normalised(x)


_PASS_MAG: dict[tuple[int, str], Array] = {}


def _pass_mag(n: int, sr: int, variant: str) -> Array:
    """Tyre/rumble noise spectrum of a passing vehicle; `far` is dulled by distance."""
    key = (n, variant)
    if key not in _PASS_MAG:
        freqs = np.fft.rfftfreq(n, 1.0 / sr)
        bumps = ((90.0, 1.0, 8.0), (900.0, 1.2, 6.0)) if variant != "far" else ((90.0, 1.0, 8.0), (300.0, 1.0, 3.0))
        dbs = log_envelope_db(freqs, -4.0 if variant != "far" else -9.0, bumps)
        _PASS_MAG[key] = (10.0 ** (dbs / 20.0)).astype(F32)
    return _PASS_MAG[key]


def cue_passbys(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Vehicles passing: tyre noise swelling and fading over 1-4 s, engine tones with a Doppler drop."""
    T = n / sr
    t = np.arange(n, dtype=np.float64) / sr
    env = np.zeros(n)
    tones = np.zeros(n, dtype=F32)
    count = rng.poisson(cue.rate * (T + 4.0))
    for _ in range(max(count, 1)):
        t0, v = rng.uniform(-2.0, T + 2.0), rng.uniform(7, 18)
        d = rng.uniform(3, 15) * (3.0 if cue.variant == "far" else 1.0)
        x = v * (t - t0)
        e = 1.0 / (1.0 + (x / d) ** 2)
        env += e * rng.uniform(0.4, 1.0)
        win = np.flatnonzero(e > 0.02)
        if win.size and cue.variant != "far":
            a, b = win[0], win[-1] + 1
            radial = v * x[a:b] / np.sqrt(d * d + x[a:b] ** 2)
            f = rng.uniform(55, 140) / (1.0 + radial / 343.0)
            tones[a:b] += harmonic(f, b - a, sr, np.array([1.0, 0.6, 0.4, 0.25]), rng) * np.sqrt(e[a:b]).astype(F32)
    noise = shaped_noise(rng, n, _pass_mag(n, sr, cue.variant)) * np.sqrt(env).astype(F32)
    x = noise + 0.5 * F32(rms(noise) / (rms(tones) + 1e-9)) * tones
    return F32(db(cue.level_db)) * normalised(x)


def _chime(rng: np.random.Generator, base: float, ratios: tuple[float, ...], sr: int) -> Array:
    """Announcement chime: bell-like partials (1, 2.76, 5.4) per note, 0.35 s apart."""
    out = np.zeros(int((0.35 * len(ratios) + 0.8) * sr), dtype=F32)
    for i, r in enumerate(ratios):
        n = int(1.0 * sr)
        t = np.arange(n, dtype=F32) / sr
        partials = ((1.0, 1.0), (2.76, 0.4), (5.4, 0.15))
        note = sum(a * np.sin(2 * np.pi * base * r * p * t).astype(F32) for p, a in partials)
        add_into(out, note * np.exp(-t / 0.3).astype(F32), int(i * 0.35 * sr))
    return out


CHIMES = {"airport": (1.0, 1.26, 1.5), "metro": (1.5, 1.0), "bus": (1.0, 1.0), "mall": (1.5, 1.26, 1.0)}


def cue_announcement(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Public-address announcements every `period` s (session-jittered): a chime, then 1.5-3 s of speech."""
    period = cue.period * sp["period_jitter"]
    out = np.zeros(n, dtype=F32)
    t = -rng.uniform(0, period)
    while t < n / sr:
        chime = _chime(rng, sp["chime_f"], CHIMES.get(cue.variant, CHIMES["airport"]), sr)
        add_into(out, chime / F32(rms(chime)), int(t * sr))
        ts = t + 0.35 * len(CHIMES.get(cue.variant, CHIMES["airport"])) + 0.3
        end = ts + rng.uniform(1.5, 3.0)
        speaker = dict(sp, voice_f0=sp["pa_f0"])
        while ts < end:
            utt = ev_voice(rng, speaker, sr)
            add_into(out, utt, int(ts * sr))
            ts += utt.shape[0] / sr + 0.1
        t += period * 2.0 ** rng.normal(0, 0.05)
    return F32(db(cue.level_db)) * normalised(out) if rms(out) > 0 else out


def cue_door_beeps(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Door-closing warning: 4-8 identical beeps at a steady period (Metro)."""
    period = cue.period * sp["period_jitter"]
    out = np.zeros(n, dtype=F32)
    nb = int(0.22 * sr)
    beep = harmonic(sp["door_f"], nb, sr, np.array([1.0, 0.3]), rng) * ramp_window(nb, sr, 0.01, 0.02)
    start = rng.uniform(-2.0, n / sr - 1.0)
    for k in range(int(rng.integers(4, 9))):
        add_into(out, beep, int((start + k * period) * sr))
    return F32(db(cue.level_db)) * normalised(out) if rms(out) > 0 else out


def cue_train(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """A train arriving or departing: rumble swelling or fading over seconds, a motor whine stepping in pitch."""
    T = n / sr
    t = np.arange(n, dtype=np.float64) / sr
    t0, span = rng.uniform(-1.0, T), rng.uniform(2.0, 5.0)
    p = np.clip((t - t0) / span, 0.0, 1.0)
    if rng.uniform() < 0.5:  # arriving: everything runs backwards
        p = 1.0 - p
    step = np.minimum(np.floor(p * 3), 2)
    f = sp["whine_f"] * 2.0 ** (0.7 * (p * 3 - step) + 0.45 * step)
    level = (0.15 + 0.85 * p).astype(F32)
    whine = harmonic(f, n, sr, np.array([1.0, 0.35, 0.1]), rng) * level
    rumble = shaped_noise(rng, n, _pass_mag(n, sr, "near")) * level
    x = rumble + 0.6 * whine
    return F32(db(cue.level_db)) * normalised(x)


def cue_hammering(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Rhythmic hammering: bursts of 1.5-4 s with hits at the session's steady period (Construction)."""
    period = sp["hammer_period"]
    out = np.zeros(n, dtype=F32)
    t = -rng.uniform(0, 2.0)
    while t < n / sr:
        burst_end = t + rng.uniform(1.5, 4.0)
        while t < burst_end:
            add_into(out, ev_metal(rng, sp, sr) * F32(rng.uniform(0.7, 1.0)), int(t * sr))
            t += period * (1.0 + rng.normal(0, 0.02))
        t += rng.uniform(0.5, 2.0)
    return F32(db(cue.level_db)) * normalised(out) if rms(out) > 0 else out


def cue_drill(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """A power tool: a rich buzz switching on and off for seconds, with a slow pitch wobble."""
    f0 = sp["drill_f"] * (1.0 + 0.03 * smooth_curve(rng, n, sr, 1.0))
    gate = (smooth_curve(rng, n, sr, 0.6) > rng.uniform(-0.3, 0.5)).astype(F32)
    gate = np.convolve(gate, np.ones(400, dtype=F32) / 400, mode="same").astype(F32)
    x = harmonic(f0, n, sr, 1.0 / np.arange(1, 13) ** 0.6, rng) * gate
    return F32(db(cue.level_db)) * normalised(x) if rms(x) > 1e-6 else x


def cue_music_bed(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Continuous music on the session's beat; `variant="kick"` adds a kick drum on every beat (Bar, square dancing)."""
    beat = sp["beat_s"]
    out = np.zeros(n, dtype=F32)
    t = -rng.uniform(0, beat)
    chord = 0
    while t < n / sr:
        if rng.uniform() < 0.25:
            chord = int(rng.integers(0, 4))
        f = sp["music_key"] * 2.0 ** ((PENTATONIC[(int(rng.integers(0, 5)) + chord) % len(PENTATONIC)]) / 12.0)
        add_into(out, 0.5 * _note(rng, f, beat, sp["timbre"], sr, pluck=cue.variant == "kick"), int(t * sr))
        t += beat
    if cue.variant == "kick":
        nk = int(0.15 * sr)
        tk = np.arange(nk) / sr
        kick = (np.sin(2 * np.pi * np.cumsum(50.0 + 90.0 * np.exp(-tk / 0.03)) / sr) * np.exp(-tk / 0.05)).astype(F32)
        kick *= F32(3.0 * rms(out) / (rms(kick) + 1e-9))
        t = -rng.uniform(0, beat)
        while t < n / sr:
            add_into(out, kick, int(t * sr))
            t += beat
    return F32(db(cue.level_db)) * normalised(out)


def cue_wind(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Wind gusts: broadband rushing noise swelling and dying every few seconds (parks, squares)."""
    key = (n, "wind")
    if key not in _PASS_MAG:
        freqs = np.fft.rfftfreq(n, 1.0 / sr)
        _PASS_MAG[key] = (10.0 ** (log_envelope_db(freqs, -3.0, ((250.0, 1.5, 6.0),)) / 20.0)).astype(F32)
    gust = np.exp(1.2 * smooth_curve(rng, n, sr, 0.35)).astype(F32)
    return F32(db(cue.level_db)) * normalised(shaped_noise(rng, n, _PASS_MAG[key]) * gust)


# The planted long-range effect: the same two events in either order, far enough apart that no
# encoder's receptive field (at most about 0.6 s, ascmamba_base's dense block) holds one event
# and the other's reverberation tail (rt60 at most 0.9 s), and far enough from the clip's edges
# that no encoder sees an edge (zero padding) and an event in one receptive field.
ORDER_EVENT_S = 0.3
ORDER_GAP_S = (1.2, 1.6)
ORDER_SEGMENT_S = 4.0  # one pair per 4 s of clip
ORDER_MARGIN_S = 0.8   # at both ends of a segment: wider than any receptive field, ~the longest rt60


def _order_event(kind: str, sp: Mapping[str, float], sr: int, rng: np.random.Generator) -> Array:
    """A: a harmonic tone (f0 about 500-900 Hz, partials to about 4 kHz); B: a noise burst over the
    same 0.5-4 kHz region. Both sit in the same mel bands (so a model that follows each band in
    time can relate them) and have symmetric raised-cosine envelopes (no direction in time)."""
    n = int(ORDER_EVENT_S * sr)
    if kind == "A":
        sound = harmonic(sp["chime_f"], n, sr, np.array([1.0, 0.8, 0.6, 0.45, 0.3]), rng)
    else:
        lf = np.log2(np.maximum(np.fft.rfftfreq(n, 1.0 / sr), 20.0))
        sound = shaped_noise(rng, n, np.exp(-0.5 * ((lf - np.log2(1500.0)) / 1.0) ** 2).astype(F32))
    return normalised(sound * ramp_window(n, sr, 0.1, 0.1))


def cue_order(rng: np.random.Generator, sp: Mapping[str, float], cue: Cue, n: int, sr: int) -> Array:
    """Event A then event B (`variant="AB"`) or B then A ("BA"), 1.2-1.6 s apart, once per 4 s of clip.

    The two variants draw the same random numbers and place the same two events: every per-band
    statistic over time is the same in distribution, only the order over seconds differs. The pair
    sits uniformly between margins of ORDER_MARGIN_S at both ends of its segment, so the placement
    is symmetric under time reversal: where the first event sits says nothing about which it is.
    """
    out = np.zeros(n, dtype=F32)
    pairs = max(1, int(n / sr // ORDER_SEGMENT_S))
    segment = n / sr / pairs
    margin = min(ORDER_MARGIN_S, 0.2 * segment)  # short clips (the micro preset) keep some room
    room = max(0.05, segment - 2 * margin - 2 * ORDER_EVENT_S)  # the longest gap that fits
    first, second = (("A", "B") if cue.variant == "AB" else ("B", "A"))
    for k in range(pairs):
        gap = rng.uniform(min(ORDER_GAP_S[0], room), min(ORDER_GAP_S[1], room))
        start = k * segment + margin + rng.uniform(0.0, max(0.0, room - gap))
        add_into(out, _order_event(first, sp, sr, rng), int(start * sr))
        add_into(out, _order_event(second, sp, sr, rng), int((start + ORDER_EVENT_S + gap) * sr))
    return F32(db(cue.level_db)) * normalised(out)


CUES: Mapping[str, Callable[[np.random.Generator, Mapping[str, float], Cue, int, int], Array]] = MappingProxyType({
    "engine": cue_engine, "passbys": cue_passbys, "announcement": cue_announcement,
    "door_beeps": cue_door_beeps, "train": cue_train, "hammering": cue_hammering,
    "drill": cue_drill, "music_bed": cue_music_bed, "wind": cue_wind, "order": cue_order,
})


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class SceneRecipe:
    """How one class sounds; sessions jitter every number here (see `draw_session`)."""

    tilt_db_oct: float
    bumps: tuple[tuple[float, float, float], ...]
    am_db: float                      # depth of the slow background modulation
    am_rate_hz: float
    rt60: tuple[float, float]         # reverberation time range, seconds
    drr_db: float                     # direct-to-reverberant ratio of the foreground
    level_db: float                   # mean clip RMS, dBFS
    snr_db: float                     # mean event level over the background
    events: Mapping[str, float]       # event type -> Poisson rate per second
    cues: tuple[Cue, ...]
    beat_s: float = 0.55              # centre of the session's musical beat
    hammer_period: float = 0.55
    cue_text: str = ""


def _ev(**rates: float) -> Mapping[str, float]:
    return MappingProxyType(dict(rates))


_BAR_OR_RESTAURANT = SceneRecipe(
    -4.0, ((80, 0.8, 5), (650, 1.3, 6), (3000, 1.0, 2)), 1.8, 0.18, (0.4, 0.9), 3.0, -26.0, 0.0,
    _ev(voice=0.95, glass=0.25, dish=0.35, music=0.05, footstep=0.05),
    (Cue("music_bed", 0.5, -2.0, variant="kick"),),
    beat_s=0.55,
    cue_text="babble; glass clinks and dish clatter at random times; music with a kick drum in half the clips")

RECIPES: Mapping[str, SceneRecipe] = MappingProxyType({
    "Bus": SceneRecipe(
        -6.0, ((80, 1.0, 10), (250, 1.0, 4)), 3.0, 0.3, (0.25, 0.5), 6.0, -24.0, 2.0,
        _ev(voice=0.25, beep=0.25, rattle=0.35, footstep=0.08, horn=0.04),
        (Cue("engine", 0.85, 2.0), Cue("passbys", 0.3, -6.0, rate=0.12),
         Cue("announcement", 0.2, -3.0, period=5.0, variant="bus")),
        cue_text="engine harmonics that ramp up over 1.5-3 s and drop at gear shifts; card-reader beeps; rattles; "
                 "low rumble"),
    "Airport": SceneRecipe(
        -3.0, ((150, 1.5, 4), (800, 1.5, 5)), 1.5, 0.1, (1.2, 2.0), 0.0, -28.0, 0.0,
        _ev(voice=0.5, suitcase=0.3, footstep=0.35, beep=0.05, music=0.03),
        (Cue("announcement", 0.7, 3.0, period=3.4, variant="airport"),
         Cue("passbys", 0.15, -8.0, rate=0.05, variant="far")),
        cue_text="PA announcements (ascending 3-note chime + speech) every ~3.4 s; rolling suitcases; long reverb"),
    "Metro": SceneRecipe(
        -5.0, ((60, 1.0, 8), (400, 1.0, 4), (2500, 0.8, 3)), 2.5, 0.2, (0.8, 1.6), 2.0, -25.0, 0.0,
        _ev(voice=0.3, rattle=0.3, beep=0.08, footstep=0.2, suitcase=0.08),
        (Cue("train", 0.7, 3.0), Cue("door_beeps", 0.4, 0.0, period=0.55),
         Cue("announcement", 0.25, 0.0, period=4.5, variant="metro")),
        cue_text="train rumble swelling/fading over 2-5 s with a stepped motor whine; door beeps every ~0.55 s; "
                 "2-note chime"),
    # Restaurant and Bar are the planted long-range pair: one recipe, told apart only by the order
    # of two events seconds apart (cue "order"); see harness/data/synth.py, LONG_RANGE_EFFECT.
    "Restaurant": replace(_BAR_OR_RESTAURANT, cues=(*_BAR_OR_RESTAURANT.cues, Cue("order", 1.0, 6.0, variant="BA")),
                          cue_text=_BAR_OR_RESTAURANT.cue_text + "; a hiss, then 1.2-1.6 s later a tone"),
    "Shopping mall": SceneRecipe(
        -3.0, ((200, 1.2, 4), (700, 1.5, 6)), 1.5, 0.1, (1.0, 1.8), 0.0, -28.0, 0.0,
        _ev(voice=0.6, footstep=0.45, beep=0.2, music=0.1, suitcase=0.1, dish=0.05),
        (Cue("music_bed", 0.5, -4.0, variant="soft"), Cue("announcement", 0.1, 0.0, period=6.0, variant="mall")),
        beat_s=0.6,
        cue_text="soft background music without drums; footsteps; scanner beeps; long reverb"),
    "Public square": SceneRecipe(
        -4.5, ((100, 1.3, 5), (800, 1.5, 3)), 2.5, 0.15, (0.1, 0.3), 10.0, -27.0, 0.0,
        _ev(voice=0.4, footstep=0.3, chirp=0.1, horn=0.05),
        (Cue("music_bed", 0.45, -2.0, variant="kick"), Cue("passbys", 0.3, -6.0, rate=0.15, variant="far"),
         Cue("wind", 0.2, -4.0)),
        beat_s=0.45,
        cue_text="square-dance music with a kick on a fast beat (~0.45 s); distant traffic; open, dry"),
    "Urban park": SceneRecipe(
        -4.0, ((80, 1.5, 4), (3500, 1.2, 4)), 4.0, 0.2, (0.05, 0.2), 12.0, -30.0, 0.0,
        _ev(chirp=0.5, voice=0.15, footstep=0.2),
        (Cue("wind", 0.6, 0.0), Cue("passbys", 0.15, -8.0, rate=0.08, variant="far")),
        cue_text="bird calls (fast sweeps 2-7 kHz); wind gusts over seconds; quiet and dry"),
    "Traffic street": SceneRecipe(
        -5.0, ((90, 1.2, 8), (1000, 1.5, 4)), 3.5, 0.25, (0.1, 0.3), 10.0, -22.0, 0.0,
        _ev(horn=0.12, voice=0.1, footstep=0.1, rattle=0.05, beep=0.02),
        (Cue("passbys", 0.95, 4.0, rate=0.5), Cue("engine", 0.3, -3.0, variant="idle")),
        cue_text="vehicle pass-bys (tyre noise swells over 1-4 s, Doppler-dropping engine tones); horns; loud"),
    "Construction site": SceneRecipe(
        -3.0, ((120, 1.0, 6), (1500, 1.2, 4)), 3.0, 0.3, (0.2, 0.5), 6.0, -23.0, 2.0,
        _ev(metal=0.35, rattle=0.2, voice=0.1),
        (Cue("hammering", 0.7, 2.0), Cue("drill", 0.4, 0.0), Cue("engine", 0.4, -2.0, variant="idle")),
        hammer_period=0.55,
        cue_text="metal hits at a steady period (0.3-0.9 s) in bursts of seconds; drills switching on/off; "
                 "diesel idle"),
    "Bar": replace(_BAR_OR_RESTAURANT, cues=(*_BAR_OR_RESTAURANT.cues, Cue("order", 1.0, 6.0, variant="AB")),
                   cue_text=_BAR_OR_RESTAURANT.cue_text + "; a tone, then 1.2-1.6 s later a hiss"),
})
assert tuple(RECIPES) == CLASSES


# --------------------------------------------------------------------------- sessions and rendering


@dataclass
class SessionSound:
    """One recording session's draw of its class recipe: shared by every clip of the session."""

    label: str
    tilt: float
    bumps: tuple[tuple[float, float, float], ...]
    am_db: float
    am_rate: float
    rt60: float
    drr_db: float
    level_db: float
    snr_db: float
    rates: dict[str, float]
    params: dict[str, float]
    ir_seed: int
    ir_cache: dict[int, Array] = field(default_factory=dict)
    env_cache: dict[int, tuple[Array, Array, Array]] = field(default_factory=dict)

    def envelope_db(self, n: int, sr: int, tilt_jitter: float, gain_jitter: Array) -> Array:
        """The background envelope (dB per rfft bin) with a clip's jitter of tilt and bump gains.

        The envelope is linear in tilt and gains, so its parts are computed once per session.
        """
        if n not in self.env_cache:
            lf = np.log2(np.maximum(np.fft.rfftfreq(n, 1.0 / sr), 20.0)).astype(F32)
            slope = lf - F32(np.log2(1000.0))
            shapes = np.stack([np.exp(F32(-0.5) * ((lf - F32(np.log2(fc))) / F32(w)) ** 2) for fc, w, _ in self.bumps])
            floor = np.minimum(F32(0.0), F32(18.0) * (lf - F32(np.log2(35.0))))
            base = F32(self.tilt) * slope + np.array([g for _, _, g in self.bumps], dtype=F32) @ shapes + floor
            self.env_cache[n] = (base, slope, shapes)
        base, slope, shapes = self.env_cache[n]
        return base + F32(tilt_jitter) * slope + gain_jitter.astype(F32) @ shapes


# How far sessions stray from their class recipe: the knob that sets corpus difficulty.
SESSION_SPREAD = {
    "tilt": 1.5,        # dB/octave, background slope
    "bump_oct": 0.3,    # octaves, centre of each spectral bump
    "bump_db": 2.5,     # dB, gain of each bump
    "room_db": 3.5,     # dB, gain of one extra session-specific resonance
    "level": 2.5,       # dB, session level
    "snr": 2.5,         # dB, events over background
    "rate_log": 0.45,   # log-normal spread of every event rate
}


def draw_session(rng: np.random.Generator, label: str) -> SessionSound:
    """Draw a session's own variant of `label`'s recipe (background colour, rates, rhythm, pitches, room)."""
    r = RECIPES[label]
    s = SESSION_SPREAD
    bumps = tuple((fc * 2.0 ** rng.normal(0, s["bump_oct"]), w * rng.uniform(0.8, 1.25),
                   g + rng.normal(0, s["bump_db"])) for fc, w, g in r.bumps)
    room = (float(2.0 ** rng.uniform(np.log2(100), np.log2(5000))), float(rng.uniform(0.4, 1.5)),
            float(rng.normal(0, s["room_db"])))
    params = {
        "voice_f0": float(2.0 ** rng.normal(np.log2(165), 0.3)),
        "pa_f0": float(2.0 ** rng.normal(np.log2(190), 0.2)),
        "music_key": float(2.0 ** rng.uniform(np.log2(180), np.log2(360))),
        "beat_s": float(r.beat_s * 2.0 ** rng.normal(0, 0.08)),
        "timbre": float(rng.uniform(0.8, 2.0)),
        "beep_f": float(2.0 ** rng.uniform(np.log2(900), np.log2(3500))),
        "door_f": float(rng.uniform(700, 1400)),
        "bird_f": float(rng.uniform(2500, 6000)),
        "metal_fc": float(2.0 ** rng.uniform(np.log2(700), np.log2(3000))),
        "hammer_period": float(np.clip(r.hammer_period * 2.0 ** rng.normal(0, 0.35), 0.3, 0.9)),
        "chime_f": float(rng.uniform(500, 900)),
        "period_jitter": float(2.0 ** rng.normal(0, 0.1)),
        "engine_f0": float(rng.uniform(22, 38)),
        "whine_f": float(rng.uniform(250, 450)),
        "drill_f": float(rng.uniform(90, 220)),
        "horn_f": float(rng.uniform(350, 520)),
    }
    return SessionSound(
        label=label,
        tilt=float(r.tilt_db_oct + rng.normal(0, s["tilt"])),
        bumps=bumps + (room,),
        am_db=float(r.am_db * rng.uniform(0.6, 1.4)),
        am_rate=float(r.am_rate_hz * 2.0 ** rng.normal(0, 0.3)),
        rt60=float(rng.uniform(*r.rt60)),
        drr_db=float(r.drr_db + rng.normal(0, 2.0)),
        level_db=float(r.level_db + rng.normal(0, s["level"])),
        snr_db=float(r.snr_db + rng.normal(0, s["snr"])),
        rates={k: float(v * np.exp(rng.normal(0, s["rate_log"]))) for k, v in r.events.items()},
        params=params,
        ir_seed=int(rng.integers(2**31)),
    )


def room_ir_samples(rt60: float, sr: int) -> int:
    """Length of the room impulse response: 1.2 x RT60, at most 1.5 s."""
    return int(min(1.2 * rt60, 1.5) * sr)


def room_spectrum(rng: np.random.Generator, rt60: float, drr_db: float, nfft: int, sr: int) -> Array:
    """Spectrum of a room impulse response: a direct path plus an exponentially decaying noise tail."""
    n = room_ir_samples(rt60, sr)
    t = np.arange(n, dtype=F32) / sr
    tail = rng.standard_normal(n).astype(F32) * np.exp(-6.91 * t / rt60).astype(F32)
    tail *= F32(db(-drr_db) / (np.sqrt(np.sum(np.square(tail, dtype=np.float64))) + 1e-9))
    tail[0] += 1.0
    return sfft.rfft(tail, nfft).astype(np.complex64)


def city_channel_db(rng: np.random.Generator, freqs: Array) -> Array:
    """A city's recording chain: a smooth EQ of a few dB plus gentle high- and low-pass roll-offs."""
    u = np.log2(np.maximum(freqs, 20.0) / 50.0) / np.log2(8000.0 / 50.0)
    eq = sum(rng.normal(0, 2.0 / math.sqrt(j)) * np.cos(np.pi * j * u + rng.uniform(0, 2 * np.pi)) for j in range(1, 5))
    f = np.maximum(freqs, 1.0)
    hp, lp = rng.uniform(40, 160), rng.uniform(5000, 7800)
    hp_db = 20 * np.log10((f / hp) ** 2 / np.sqrt(1 + (f / hp) ** 4))
    lp_db = -10 * np.log10(1 + (f / lp) ** 4)
    return np.clip(eq, -6.0, 6.0) + hp_db + lp_db


@dataclass(frozen=True)
class ChannelDraw:
    """The seeded parameters of a city channel, evaluated lazily on any FFT size."""

    seed: tuple[int, ...]

    def magnitude(self, nfft: int, sr: int) -> Array:
        freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
        return (10.0 ** (city_channel_db(np.random.default_rng(list(self.seed)), freqs) / 20.0)).astype(F32)


_CHANNEL_CACHE: dict[tuple[tuple[int, ...], int, int], Array] = {}


def _channel(ch: ChannelDraw, nfft: int, sr: int) -> Array:
    key = (ch.seed, nfft, sr)
    if key not in _CHANNEL_CACHE:
        if len(_CHANNEL_CACHE) > 256:
            _CHANNEL_CACHE.clear()
        _CHANNEL_CACHE[key] = ch.magnitude(nfft, sr)
    return _CHANNEL_CACHE[key]


CLIP_JITTER = {"tilt": 0.4, "bump_db": 1.0, "level": 3.0, "event_db": 4.0}


def render_clip(rng: np.random.Generator, session: SessionSound, channel: ChannelDraw, n: int, sr: int) -> Array:
    """Render one clip of `n` samples: background + events + long cues, through the room and the city channel.

    Returns float32 in [-1, 1) at the clip's drawn level (dBFS RMS).
    """
    cj = CLIP_JITTER
    gain_jitter = rng.normal(0, cj["bump_db"], len(session.bumps))
    env_db = session.envelope_db(n, sr, rng.normal(0, cj["tilt"]), gain_jitter)
    chan = _channel(channel, n, sr)
    bg = shaped_noise(rng, n, (10.0 ** (env_db / 20.0)).astype(F32) * chan)
    bg *= (10.0 ** (session.am_db * smooth_curve(rng, n, sr, session.am_rate) / 20.0)).astype(F32)

    pre = int(0.5 * sr)  # events may start before the clip begins
    fg = np.zeros(n + pre, dtype=F32)
    span = (n + pre) / sr
    for name, rate in session.rates.items():
        for _ in range(rng.poisson(rate * span)):
            ev = EVENTS[name](rng, session.params, sr)
            gain = db(session.snr_db + rng.normal(0, cj["event_db"]))
            add_into(fg, F32(gain) * ev, int(rng.uniform(0, n + pre)) - ev.shape[0] // 4)
    for cue in RECIPES[session.label].cues:
        if rng.uniform() < cue.prob:
            fg[pre:] += CUES[cue.name](rng, session.params, cue, n, sr) * F32(db(session.snr_db))

    nfft = sfft.next_fast_len(n + pre + room_ir_samples(session.rt60, sr), real=True)  # linear, not circular
    if nfft not in session.ir_cache:
        room_rng = np.random.default_rng(session.ir_seed)
        session.ir_cache[nfft] = room_spectrum(room_rng, session.rt60, session.drr_db, nfft, sr)
    spec = sfft.rfft(fg, nfft) * session.ir_cache[nfft] * _channel(channel, nfft, sr)
    mix = bg + sfft.irfft(spec, nfft)[pre:pre + n]

    level = session.level_db + rng.normal(0, cj["level"])
    mix *= F32(db(level) / rms(mix))
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:  # a loud clip is turned down rather than clipped
        mix *= F32(0.99 / peak)
    return mix
