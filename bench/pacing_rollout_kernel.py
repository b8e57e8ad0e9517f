"""The rollout's futures, compiled with numba (see bench/pacing_rollout.py): one simulated
call centre per future, a few hundred per decision. Times are seconds from the decision."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

RING, TIMEOUT, PATIENCE, BASE_H = (3.0, 15.0), 20.0, 2.0, 12.0


@njit(cache=True)
def answers_within(age, h, p):
    """P(a line of this age, still ringing, answers within the next h s); ring uniform on RING."""
    lo, hi = RING

    def f(t):
        return min(max((t - lo) / (hi - lo), 0.0), 1.0)
    alive = 1.0 - p * f(age)
    return p * (f(age + h) - f(age)) / alive if alive > 1e-9 else 0.0


@njit(cache=True)
def _ndtri(u):
    """Inverse standard normal CDF (Acklam's approximation, |error| < 1.2e-9)."""
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716,
         2.506628277459239)
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (-7.784894002430293e-03, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
         2.938163982698783)
    d = (7.784695709041462e-03, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    u = min(max(u, 1e-300), 1.0 - 1e-16)
    if 0.02425 <= u <= 0.97575:
        q = u - 0.5
        r = q * q
        return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1))
    q = math.sqrt(-2.0 * math.log(u if u < 0.5 else 1.0 - u))
    x = ((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
         / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1))
    return x if u < 0.5 else -x


@njit(cache=True)
def _ring_f(t):
    return min(max((t - RING[0]) / (RING[1] - RING[0]), 0.0), 1.0)


@njit(cache=True)
def _shipped_n(t, free, conn, tend, nl, dial, ans, end, p_line, ts, talk_rows, theta, room):
    """The shipped rule (dialer.pacing_predictive, normal approximation, suffix maximum) at t."""
    k = len(ts)
    gap, var = np.zeros(k), np.zeros(k)
    for i in range(nl):
        if end[i] > t and ans[i] >= t:
            fa = _ring_f(t - dial[i])
            alive = 1.0 - p_line * fa
            if alive > 1e-9:
                for j in range(k):
                    q = p_line * (_ring_f(t - dial[i] + ts[j]) - fa) / alive
                    gap[j] += q
                    var[j] += q * (1.0 - q)
    for a in range(len(free)):
        if free[a] <= t:
            gap -= 1.0
        elif conn[a] <= t < tend[a]:
            row = talk_rows[min(int(t - conn[a]), talk_rows.shape[0] - 1)]
            gap -= row
            var += row * (1.0 - row)
        elif tend[a] <= t:
            for j in range(k):
                if free[a] - t <= ts[j] + PATIENCE:
                    gap[j] -= 1.0
    n = 0
    while n < room:
        run = total = 0.0
        for j in range(k - 1, -1, -1):
            q = p_line * _ring_f(ts[j])
            v = max(var[j] + n * q * (1.0 - q), 0.25)
            shortage = 0.5 * math.erfc(-(gap[j] + n * q + 0.5) / math.sqrt(2.0 * v))
            run = max(run, shortage)
            total += (_ring_f(ts[j]) - _ring_f(ts[j - 1] if j else ts[0] - 1.0)) * run
        if total > theta:
            break
        n += 1
    return n


@njit(cache=True)
def _fluid_n(t, free, conn, tend, nl, dial, ans, end, p, hz, margin, room):
    """The fluid rule (module docstring) at t."""
    supply = demand = 0.0
    for a in range(len(free)):
        if free[a] <= t:
            supply += 1.0
        elif conn[a] <= t < tend[a]:
            supply += hz[min(int(t - conn[a]), len(hz) - 1)]
        elif tend[a] <= t and free[a] - t <= BASE_H + PATIENCE:
            supply += 1.0
    for i in range(nl):
        if end[i] > t and ans[i] >= t:
            demand += answers_within(t - dial[i], BASE_H, p)
    return min(int(math.floor((supply - demand - margin) / answers_within(0.0, BASE_H, p))), room)


@njit(cache=True)
def rollout(specs, forced, ages, talk_el, wrap_rem, n_ready, n_waiting, p, mu, sigma, wrap, horizon, lam,
            shipped, p_line, ts, talk_rows, theta, margin, hz, scenarios, seed, cap):
    """Mean ``idle agent-seconds + lam * abandons`` over the horizon, per spec: ``specs[c]``
    lines dialed now, the last of them answering (``forced`` 1), not (0) or by chance (-1)."""
    np.random.seed(seed)
    out = np.zeros(len(specs))
    n_if, n_ag, kb = len(ages), len(talk_el) + len(wrap_rem) + n_ready, 400
    size = n_if + int(specs.max()) + kb + 1
    dial, ans, end, buf = np.empty(size), np.empty(size), np.empty(size), np.empty(size)
    free, tend, conn = np.empty(n_ag), np.empty(n_ag), np.empty(n_ag)
    free0, tend0, conn0, ans0 = np.zeros(n_ag), np.full(n_ag, -1.0), np.full(n_ag, -1e3), np.empty(n_if)
    for _ in range(scenarios):
        # one future: which lines in flight answer and when, when the busy agents are free
        for i in range(n_if):
            lo = max(ages[i], RING[0])
            hit = np.random.random() < answers_within(ages[i], 1e9, p)
            ans0[i] = lo + (RING[1] - lo) * np.random.random() - ages[i] if hit else np.inf
        for k in range(len(talk_el)):
            e = max(talk_el[k], 0.5)
            s0 = 0.5 * math.erfc(-((math.log(e) - mu) / sigma) / math.sqrt(2.0))
            rem = max(math.exp(mu + sigma * _ndtri(s0 + np.random.random() * (1.0 - s0))) - e, 0.0)
            tend0[k], free0[k], conn0[k] = rem, rem + wrap, -e
        for k in range(len(wrap_rem)):
            free0[len(talk_el) + k] = wrap_rem[k]
        nc = int(specs.max()) + 1
        cu, cr = np.random.random(nc), RING[0] + (RING[1] - RING[0]) * np.random.random(nc)
        bu, br = np.random.random(kb), RING[0] + (RING[1] - RING[0]) * np.random.random(kb)
        talk = np.exp(mu + sigma * np.random.standard_normal(kb))
        for ci in range(len(specs)):
            nl = 0
            for i in range(n_if):
                dial[nl], ans[nl] = -ages[i], ans0[i]
                end[nl] = ans0[i] if ans0[i] < np.inf else TIMEOUT - ages[i]
                nl += 1
            for i in range(specs[ci]):
                hit = cu[i] < p if (i < specs[ci] - 1 or forced[ci] < 0) else forced[ci] == 1
                dial[nl], ans[nl] = 0.0, cr[i] if hit else np.inf
                end[nl] = cr[i] if hit else TIMEOUT
                nl += 1
            free[:], tend[:], conn[:] = free0, tend0, conn0
            idle = aband = 0.0
            nbase = ntalk = 0
            t = -1.0
            na = n_waiting              # callers already waiting: answered about a second ago
            buf[:na] = -PATIENCE / 2
            while t < horizon:
                for i in range(nl):
                    if t <= ans[i] < t + 1.0 and ans[i] >= 0.0:
                        buf[na] = ans[i]
                        na += 1
                buf[:na].sort()
                for x in range(na):     # each answer takes the agent free first, if within 2 s
                    j = np.argmin(free) if n_ag else -1
                    if j >= 0 and free[j] <= buf[x] + PATIENCE:
                        c = max(buf[x], free[j], 0.0)
                        idle += max(c - max(free[j], 0.0), 0.0)
                        conn[j], tend[j] = c, c + talk[ntalk % kb]
                        free[j] = tend[j] + wrap
                        ntalk += 1
                    else:
                        aband += 1.0
                t += 1.0
                na = 0
                m = 0
                for i in range(nl):     # drop the lines that ended
                    if end[i] > t:
                        dial[m], ans[m], end[m] = dial[i], ans[i], end[i]
                        m += 1
                nl = m
                if t < 1.0:             # now: the spec's lines are the decision
                    continue
                # the base rule, from what a dialer can see at t
                room = min(cap - nl, kb - nbase)
                if shipped:
                    k = _shipped_n(t, free, conn, tend, nl, dial, ans, end, p_line, ts, talk_rows, theta, room)
                else:
                    k = _fluid_n(t, free, conn, tend, nl, dial, ans, end, p, hz, margin, room)
                for _ in range(max(k, 0)):
                    hit = bu[nbase] < p
                    dial[nl], ans[nl] = t, t + br[nbase] if hit else np.inf
                    end[nl] = ans[nl] if hit else t + TIMEOUT
                    nl, nbase = nl + 1, nbase + 1
            for j in range(n_ag):
                idle += max(horizon - max(free[j], 0.0), 0.0)
            out[ci] += idle + lam * aband
    return out / scenarios
