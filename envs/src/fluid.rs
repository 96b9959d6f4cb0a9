//! MuJoCo's inertia-box fluid model (`mj_inertiaBoxFluidModel` in `engine_passive.c`), as pure
//! functions.
//!
//! A body of mass `M` and principal inertia `(I_x, I_y, I_z)` (in its inertial frame) is replaced
//! by the box of the same mass and inertia, with half-sizes
//! `r_i = sqrt(3/(2M) · (I_j + I_k − I_i))`. With `v` and `ω` the velocity of the centre of mass
//! and the angular velocity in that frame, each axis `i` (with `j`, `k` the other two) gets
//!
//! | term | force | torque |
//! |---|---|---|
//! | quadratic drag (density ρ) | `−2ρ r_j r_k |v_i| v_i` | `−½ρ r_i (r_j⁴ + r_k⁴) |ω_i| ω_i` |
//! | viscous (viscosity β), `r_eq = (r_x+r_y+r_z)/3` | `−6βπ r_eq v_i` | `−8βπ r_eq³ ω_i` |
//!
//! applied at the centre of mass. MuJoCo evaluates it at every RK4 stage; the Swimmer evaluates it
//! at every physics substep. The box is NOT the geometric capsule: using the capsule's size
//! changes Swimmer returns by tens (see `shared/reference/swimmer-mujoco/fluid_model.md`).

/// MuJoCo's `mjMINVAL`: the floor on `I_j + I_k − I_i` before the square root.
const MJ_MINVAL: f64 = 1e-15;

/// Half-sizes `(r_x, r_y, r_z)` of the equivalent inertia box of a body.
pub fn inertia_box_half_sizes(mass: f64, inertia: [f64; 3]) -> [f64; 3] {
    let [ix, iy, iz] = inertia;
    let r = |a: f64, b: f64, c: f64| (1.5 / mass * (a + b - c).max(MJ_MINVAL)).sqrt();
    [r(iy, iz, ix), r(iz, ix, iy), r(ix, iy, iz)]
}

/// Fluid force and torque on one body, all in the body's inertial frame:
/// `v`, `w` are the COM velocity and angular velocity; returns `(force, torque)`.
pub fn inertia_box_force_torque(
    mass: f64,
    inertia: [f64; 3],
    density: f64,
    viscosity: f64,
    v: [f64; 3],
    w: [f64; 3],
) -> ([f64; 3], [f64; 3]) {
    let r = inertia_box_half_sizes(mass, inertia);
    let r_eq = (r[0] + r[1] + r[2]) / 3.0;
    let pi = std::f64::consts::PI;
    let mut f = [0.0; 3];
    let mut g = [0.0; 3];
    for i in 0..3 {
        let (j, k) = ((i + 1) % 3, (i + 2) % 3);
        f[i] = -2.0 * density * r[j] * r[k] * v[i].abs() * v[i] - 6.0 * viscosity * pi * r_eq * v[i];
        g[i] = -0.5 * density * r[i] * (r[j].powi(4) + r[k].powi(4)) * w[i].abs() * w[i]
            - 8.0 * viscosity * pi * r_eq.powi(3) * w[i];
    }
    (f, g)
}

/// The five coefficients of the fluid model for a slender body moving in the horizontal plane
/// whose long (inertial) axis lies in that plane. See [`PlanarDrag::force_torque`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanarDrag {
    /// Linear viscous coefficient `6πβ r_eq` (N·s/m), any direction.
    pub c_vl: f64,
    /// Angular viscous coefficient `8πβ r_eq³` (N·m·s).
    pub c_va: f64,
    /// Quadratic drag along the long axis `2ρ r_x r_y` (kg/m).
    pub c_da: f64,
    /// Quadratic drag normal to the long axis, in the plane, `2ρ r_x r_z` (kg/m).
    pub c_dl: f64,
    /// Quadratic drag torque about the vertical `½ρ r_x (r_y⁴ + r_z⁴)` (kg·m²).
    pub c_dw: f64,
}

impl PlanarDrag {
    /// Coefficients of a body with `mass` and principal inertia `(I_perp, I_perp, I_axis)` about
    /// (two axes normal to the long axis, the long axis), as MuJoCo orders a capsule's.
    pub fn new(mass: f64, i_perp: f64, i_axis: f64, density: f64, viscosity: f64) -> Self {
        let r = inertia_box_half_sizes(mass, [i_perp, i_perp, i_axis]);
        let r_eq = (r[0] + r[1] + r[2]) / 3.0;
        let pi = std::f64::consts::PI;
        PlanarDrag {
            c_vl: 6.0 * pi * viscosity * r_eq,
            c_va: 8.0 * pi * viscosity * r_eq.powi(3),
            c_da: 2.0 * density * r[0] * r[1],
            c_dl: 2.0 * density * r[0] * r[2],
            c_dw: 0.5 * density * r[0] * (r[1].powi(4) + r[2].powi(4)),
        }
    }

    /// World-frame force on the COM and torque about the vertical for a body with heading
    /// `theta` (direction of its long axis), COM velocity `v` and yaw rate `omega`.
    pub fn force_torque(&self, theta: f64, v: [f64; 2], omega: f64) -> ([f64; 2], f64) {
        let (s, c) = theta.sin_cos();
        let t = [c, s];
        let n = [-s, c];
        let vt = v[0] * t[0] + v[1] * t[1];
        let vn = v[0] * n[0] + v[1] * n[1];
        let ft = -self.c_vl * vt - self.c_da * vt.abs() * vt;
        let fn_ = -self.c_vl * vn - self.c_dl * vn.abs() * vn;
        let force = [ft * t[0] + fn_ * n[0], ft * t[1] + fn_ * n[1]];
        let torque = -self.c_va * omega - self.c_dw * omega.abs() * omega;
        (force, torque)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Swimmer segment, MuJoCo 4.0.0 compiled values (swimmer_model.md §2).
    const M: f64 = 35.604716740684324;
    const I_PERP: f64 = 3.9175660390264717;
    const I_AXIS: f64 = 0.17383479349863523;

    #[test]
    fn swimmer_coefficients_match_mujoco_table() {
        let d = PlanarDrag::new(M, I_PERP, I_AXIS, 4000.0, 0.1);
        let r = inertia_box_half_sizes(M, [I_PERP, I_PERP, I_AXIS]);
        assert!((r[0] - 0.085577622144).abs() < 1e-11);
        assert!((r[2] - 0.56812384731).abs() < 1e-10);
        assert!((d.c_vl - 0.4645027526229677).abs() < 1e-12);
        assert!((d.c_va - 0.0376098296466958).abs() < 1e-12);
        assert!((d.c_da - 58.58823529411759).abs() < 1e-9);
        assert!((d.c_dl - 388.94950348724655).abs() < 1e-9);
        assert!((d.c_dw - 17.8396291144307).abs() < 1e-9);
    }

    #[test]
    fn planar_form_equals_the_3d_model() {
        // MuJoCo's inertial frame of a capsule lying along world x rotated by theta:
        // inertial z = long axis t, inertial y = in-plane normal n, inertial x = world −z.
        let d = PlanarDrag::new(M, I_PERP, I_AXIS, 4000.0, 0.1);
        for &(theta, vx, vy, w) in &[(0.3, 0.7, -0.2, 1.5), (-2.0, -0.1, 0.4, -3.0), (1.0, 0.0, 0.0, 0.0)] {
            let (s, c): (f64, f64) = f64::sin_cos(theta);
            let (t, n) = ([c, s], [-s, c]);
            let v_local = [0.0, vx * n[0] + vy * n[1], vx * t[0] + vy * t[1]];
            let w_local = [-w, 0.0, 0.0];
            let (f, g) = inertia_box_force_torque(M, [I_PERP, I_PERP, I_AXIS], 4000.0, 0.1, v_local, w_local);
            let f_world = [f[1] * n[0] + f[2] * t[0], f[1] * n[1] + f[2] * t[1]];
            let (fp, tp) = d.force_torque(theta, [vx, vy], w);
            assert!((fp[0] - f_world[0]).abs() < 1e-9 && (fp[1] - f_world[1]).abs() < 1e-9);
            assert!((tp - (-g[0])).abs() < 1e-9);
        }
    }

    #[test]
    fn drag_opposes_motion() {
        let d = PlanarDrag::new(M, I_PERP, I_AXIS, 4000.0, 0.1);
        let (f, t) = d.force_torque(0.0, [1.0, 0.0], 2.0);
        assert!(f[0] < 0.0 && f[1].abs() < 1e-12 && t < 0.0);
        // sideways motion is resisted ~6.6x more than motion along the axis
        let (fs, _) = d.force_torque(0.0, [0.0, 1.0], 0.0);
        assert!(fs[1] / f[0] > 6.0);
    }
}
