#!/usr/bin/env python3
"""Checks, inside the real MuJoCo, the formulas rebel-rs's soft floor contacts use (envs/src/mjcf/soft_contact.rs).

    ~/.cache/rebel-rs/mujoco-venv/bin/python scripts/soft_contact_probe.py   (the venv scripts/bench_vs_mujoco.sh makes)

For Hopper-v5, Walker2d-v5 and HalfCheetah-v5 (Gymnasium's own model files) at states with the feet on the floor
(zero action after 160 physics steps; uniform random actions after 200), it rebuilds every contact row of MuJoCo's
constraint problem from the model alone and compares it with MuJoCo's own arrays:
  * body_invweight0 = trace(Jc M^-1 Jc^T)/3 at qpos0 (Jc: the body's centre-of-mass Jacobian);
  * R of a pyramid edge = 2 mu^2 (1 - imp)/imp (1 + mu^2) invweight0 (condim 3; (1 - imp)/imp invweight0 for condim 1);
  * aref = -b (J v) - k imp (dist - margin), k = 1/(dmax^2 tau^2 zeta^2), b = 2/(dmax tau);
  * R of a joint-limit row = (1 - imp)/imp dof_invweight0, dof_invweight0 = M^-1's diagonal at qpos0, and its
    aref = -b (J v) - k imp (pos - margin);
  * the forces: projected Gauss-Seidel on  min 1/2 f^T (A + R) f + f^T (J qacc_smooth - aref), f >= 0,
    A = J M^-1 J^T, gives efc_force.
Prints the largest relative error of each; exits 1 if one exceeds 1e-6.
"""
import os
import sys

import gymnasium
import mujoco
import numpy as np

FILES = {"Hopper-v5": "hopper.xml", "Walker2d-v5": "walker2d_v5.xml", "HalfCheetah-v5": "half_cheetah.xml"}


def impedance(x, solimp):
    clamp = lambda v: min(0.9999, max(1e-4, v))  # MuJoCo's getsolparam
    dmin, dmax, width, mid, power = clamp(solimp[0]), clamp(solimp[1]), max(0.0, solimp[2]), clamp(solimp[3]), max(1.0, solimp[4])
    if dmin == dmax or width <= 1e-15:
        return 0.5 * (dmin + dmax)
    x = abs(x) / width
    if x >= 1 or x <= 0:
        return dmax if x >= 1 else dmin
    if power == 1:
        y = x
    elif x <= mid:
        y = x ** power / mid ** (power - 1)
    else:
        y = 1 - (1 - x) ** power / (1 - mid) ** (power - 1)
    return dmin + y * (dmax - dmin)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / (1e-9 + np.abs(b)))) if a.size else 0.0


def probe(env, rng):
    xml = os.path.join(os.path.dirname(gymnasium.__file__), "envs/mujoco/assets", FILES[env])
    m = mujoco.MjModel.from_xml_path(xml)
    d0 = mujoco.MjData(m)
    mujoco.mj_forward(m, d0)
    M0 = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d0, M0)
    inv0 = []
    for b in range(m.nbody):
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacBodyCom(m, d0, jp, jr, b)
        inv0.append(np.trace(jp @ np.linalg.solve(M0, jp.T)) / 3 if b else 0.0)
    errs = {"invweight0": rel(inv0[1:], m.body_invweight0[1:, 0]), "R": 0.0, "aref": 0.0, "limit R": 0.0,
            "limit aref": 0.0, "force": 0.0}
    limited = m.jnt_limited.astype(bool) & (m.jnt_type != int(mujoco.mjtJoint.mjJNT_FREE))
    dofs = m.jnt_dofadr[limited]
    errs["dof_invweight0"] = rel(np.diag(np.linalg.inv(M0))[dofs], m.dof_invweight0[dofs])
    for steps, random in ((160, False), (200, True)):
        d = mujoco.MjData(m)
        for _ in range(steps):
            d.ctrl[:] = rng.uniform(-1, 1, m.nu) if random else 0.0
            mujoco.mj_step(m, d)
        mujoco.mj_forward(m, d)
        if d.ncon == 0:
            sys.exit(f"soft_contact_probe.py: {env}: nothing touches the floor after {steps} steps")
        R, aref = np.zeros(d.nefc), np.zeros(d.nefc)
        for c in d.contact[: d.ncon]:
            body = max(m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2])
            imp = impedance(c.dist - c.includemargin, c.solimp)
            tau, zeta = max(c.solref[0], 2 * m.opt.timestep), c.solref[1]
            dmax = min(0.9999, max(1e-4, c.solimp[1]))
            k, b = 1 / (dmax * dmax * tau * tau * zeta * zeta), 2 / (dmax * tau)
            mu, n = c.friction[0], (2 * (c.dim - 1) if c.dim > 1 else 1)
            r0 = (1 - imp) / imp * inv0[body]
            rows = slice(c.efc_address, c.efc_address + n)
            R[rows] = 2 * mu * mu * (1 + mu * mu) * r0 if c.dim > 1 else r0
            aref[rows] = -b * d.efc_vel[rows] - k * imp * (c.dist - c.includemargin)
        J = d.efc_J.reshape(d.nefc, m.nv)
        for i in range(d.ne + d.nf, d.ne + d.nf + d.nl):  # the limit rows
            j = d.efc_id[i]
            dof = m.jnt_dofadr[j]
            tau, zeta = max(m.jnt_solref[j][0], 2 * m.opt.timestep), m.jnt_solref[j][1]
            dmax = min(0.9999, max(1e-4, m.jnt_solimp[j][1]))
            k, b = 1 / (dmax * dmax * tau * tau * zeta * zeta), 2 / (dmax * tau)
            imp = impedance(d.efc_pos[i] - d.efc_margin[i], m.jnt_solimp[j])
            R[i] = (1 - imp) / imp * np.diag(np.linalg.inv(M0))[dof]
            aref[i] = -b * (J[i] @ d.qvel) - k * imp * (d.efc_pos[i] - d.efc_margin[i])
        lr = slice(d.ne + d.nf, d.ne + d.nf + d.nl)
        errs["limit R"] = max(errs["limit R"], rel(R[lr], d.efc_R[lr]))
        errs["limit aref"] = max(errs["limit aref"], rel(aref[lr], d.efc_aref[lr]))
        cr = slice(d.ne + d.nf + d.nl, d.nefc)  # the contact rows (after equality, friction and limit rows)
        errs["R"] = max(errs["R"], rel(R[cr], d.efc_R[cr]))
        errs["aref"] = max(errs["aref"], rel(aref[cr], d.efc_aref[cr]))
        M = np.zeros((m.nv, m.nv))
        mujoco.mj_fullM(m, d, M)
        A = J @ np.linalg.solve(M, J.T)
        AR, bvec = A + np.diag(d.efc_R), J @ d.qacc_smooth - d.efc_aref
        f = np.zeros(d.nefc)
        lower = np.array([0.0 if t >= int(mujoco.mjtConstraint.mjCNSTR_LIMIT_JOINT) else -np.inf for t in d.efc_type])
        for _ in range(5000):
            for i in range(d.nefc):
                f[i] = max(lower[i], f[i] - (AR[i] @ f + bvec[i]) / AR[i, i])
        errs["force"] = max(errs["force"], float(np.max(np.abs(f - d.efc_force)) / (1e-9 + np.max(np.abs(d.efc_force)))))
    return errs


def main():
    rng = np.random.default_rng(0)
    worst = 0.0
    for env in FILES:
        e = probe(env, rng)
        worst = max(worst, *e.values())
        print(f"{env}: largest relative error  " + "  ".join(f"{k} {v:.1e}" for k, v in e.items()))
    if worst > 1e-6:
        sys.exit(f"soft_contact_probe.py: an error of {worst:.1e} exceeds 1e-6: the formulas do not match this MuJoCo")


if __name__ == "__main__":
    main()
