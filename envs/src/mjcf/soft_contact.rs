//! MuJoCo's soft contacts with the floor and its soft joint limits, as explicit forces before each Rapier step
//! (the env options `mujoco_contacts` and `mujoco_limits`; [`MjcfWorld::set_mujoco_contacts`],
//! [`MjcfWorld::set_mujoco_limits`]), solved together as MuJoCo's one constraint problem.
//!
//! Rapier corrects a contact's penetration through positions; MuJoCo's contact force follows the penetration
//! and the approach speed (`solref`, `solimp`), which is what lets a resting foot tilt and creep (README,
//! "Why a passive Hopper stands longer here"). This module computes, for every body geom (capsule or sphere)
//! touching the floor plane and every joint past its range, MuJoCo's constraint rows and forces:
//!
//! * contacts: each end sphere of a capsule (the sphere itself) closer to the plane than the pair's margin
//!   (`margin − gap`, the two geoms' margins summed) gives one contact at the midpoint between the surfaces,
//!   as MuJoCo's plane–capsule and plane–sphere tests do;
//! * contact rows: condim 3 makes the four edges `n ± μ·t₁`, `n ± μ·t₂` of MuJoCo's pyramidal cone (its default),
//!   with MuJoCo's contact frame (`t₁` a capsule's axis projected on the floor, the world's y for a sphere),
//!   condim 1 the normal alone; `J` the rows' Jacobians in the multibody's generalised velocities;
//! * limit rows: `J = ±1` at a DoF past its range (+ at the lower limit), violation `pos` = `q − lo` or `hi − q`;
//! * `aref = −b·(J v) − k·imp·(pos − margin)` (for a contact `pos` is its distance) with `k = 1/(dmax²·τ²·ζ²)`,
//!   `b = 2/(dmax·τ)`, `imp` from `solimp` at the violation, `τ ≥ 2·timestep` (MuJoCo's safety clamp);
//! * `R = (1 − imp)/imp · diagApprox`, with MuJoCo's `diagApprox`: for a pyramid edge `(1 + μ²)` times the
//!   translational inverse weight of the geom's MJCF body at its centre of mass at the rest pose
//!   (`body_invweight0`), a pyramid's rows sharing `2μ²·R` (MuJoCo's `mj_makeImpedance`); for a limit M⁻¹'s
//!   diagonal entry at the rest pose (`dof_invweight0`);
//! * forces: MuJoCo's convex problem in its dual form, `min ½ fᵀ(A + R) f + fᵀ(a₀ − aref)` over `f ≥ 0`,
//!   `A = J M⁻¹ Jᵀ` (M with armature at the current pose, MuJoCo's), `a₀ = J·qacc_smooth`, all rows of a
//!   multibody at once, solved by projected Gauss–Seidel (its optimum is the one MuJoCo's Newton solver finds:
//!   `scripts/soft_contact_probe.py` checks these formulas against MuJoCo's `efc_force`, and the test
//!   `constraint_forces_are_mujocos_qfrc_constraint` our generalised forces against MuJoCo's `qfrc_constraint`).
//!
//! `qacc_smooth = M⁻¹(τ + gravity − c(q, v) − damping·v)` with the Coriolis, centrifugal and gyroscopic forces
//! `c` ([`MjcfWorld::coriolis_forces`]; with gravity they are MuJoCo's `qfrc_bias`, which a test holds them to).
//! What differs from MuJoCo: the forces are computed once per Rapier step at its start, where MuJoCo's RK4
//! (Hopper, Walker2d, Ant, Humanoid) evaluates them four times. Contacts between two body geoms stay Rapier's.

use rapier3d::na::{DMatrix, DVector, RowDVector};
use rapier3d::prelude::*;

use super::{impedance, MjcfWorld};

/// A pair's contact parameters by MuJoCo's rules: `solref`, `solimp` mixed by `solmix`, margins and gaps
/// summed, the larger `condim`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContactParams {
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
    /// `margin − gap`: contacts act from this distance on.
    pub margin: f64,
    pub condim: u32,
}

/// One geom's contact attributes (MuJoCo's defaults where the model sets none).
#[derive(Clone, Copy, Debug, PartialEq)]
struct GeomContact {
    solref: [f64; 2],
    solimp: [f64; 5],
    margin: f64,
    gap: f64,
    condim: u32,
    solmix: f64,
}

impl Default for GeomContact {
    fn default() -> Self {
        GeomContact {
            solref: [0.02, 1.0],
            solimp: [0.9, 0.95, 0.001, 0.5, 2.0],
            margin: 0.0,
            gap: 0.0,
            condim: 3,
            solmix: 1.0,
        }
    }
}

const KEYS: [&str; 7] = ["solref", "solimp", "margin", "gap", "condim", "solmix", "priority"];

fn read_geom(g: &roxmltree::Node, c: &mut GeomContact) -> Result<(), String> {
    let name = g.attribute("name").unwrap_or("(unnamed)");
    let bad = |a: &str, v: &str| format!("geom {name:?}: {a}=\"{v}\" is not a valid value");
    let nums = |a: &str, v: &str| -> Result<Vec<f64>, String> {
        v.split_whitespace().map(|x| x.parse::<f64>().map_err(|_| bad(a, v))).collect()
    };
    for a in KEYS {
        let Some(v) = g.attribute(a) else { continue };
        let x = nums(a, v)?;
        let first = *x.first().ok_or_else(|| bad(a, v))?;
        match a {
            "solref" => {
                if x.iter().any(|&r| r <= 0.0) {
                    return Err(format!("geom {name:?}: solref=\"{v}\" in MuJoCo's direct (negative) form is not supported by mujoco_contacts; give a time constant and a damping ratio"));
                }
                c.solref.iter_mut().zip(&x).for_each(|(o, x)| *o = *x);
            }
            "solimp" => c.solimp.iter_mut().zip(&x).for_each(|(o, x)| *o = *x),
            "margin" => c.margin = first,
            "gap" => c.gap = first,
            "condim" => c.condim = first as u32,
            "solmix" => c.solmix = first,
            _ if first != 0.0 => {
                return Err(format!("geom {name:?}: priority=\"{v}\" is not supported by mujoco_contacts (the pair's parameters are mixed, not taken from one geom)"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The contact parameters of the model's body geoms against its floor plane, read from the top-level
/// `<default><geom>` and the geoms themselves; `Err` says why they cannot be (body geoms that differ among
/// themselves, a default class that sets them, no floor plane).
pub(super) fn floor_contact_params(doc: &roxmltree::Document) -> Result<ContactParams, String> {
    let root = doc.root_element();
    let top = root.children().find(|n| n.has_tag_name("default"));
    let mut base = GeomContact::default();
    if let Some(top) = top {
        if let Some(g) = top.children().find(|n| n.has_tag_name("geom")) {
            read_geom(&g, &mut base)?;
        }
        for d in top.descendants().filter(|n| n.has_tag_name("default") && *n != top) {
            let set = d.children().find(|n| n.has_tag_name("geom")).and_then(|g| KEYS.iter().find(|k| g.attribute(**k).is_some()));
            if let Some(k) = set {
                return Err(format!("default class {:?} sets the geom's {k}: mujoco_contacts reads contact parameters from the top-level <default><geom> and the geoms only; write it there", d.attribute("class").unwrap_or("")));
            }
        }
    }
    let (mut floor, mut body): (Option<GeomContact>, Option<(GeomContact, String)>) = (None, None);
    for g in root.descendants().filter(|n| n.has_tag_name("geom")) {
        let parent = g.parent_element().map(|p| p.tag_name().name()).unwrap_or("");
        let name = g.attribute("name").unwrap_or("(unnamed)").to_string();
        let mut c = base;
        read_geom(&g, &mut c)?;
        match parent {
            "worldbody" if g.attribute("type") == Some("plane") => match floor {
                Some(f) if f != c => return Err("the world's planes have different contact parameters; give them the same".into()),
                _ => floor = Some(c),
            },
            "worldbody" => return Err(format!("world geom {name:?} is not a plane: mujoco_contacts handles the body geoms against a floor plane only")),
            "body" => match &body {
                Some((b, other)) if *b != c => {
                    return Err(format!("geoms {other:?} and {name:?} have different contact parameters (solref, solimp, margin, gap, condim, solmix); mujoco_contacts needs them equal on every body geom"))
                }
                Some(_) => {}
                None => body = Some((c, name)),
            },
            _ => {}
        }
    }
    let floor = floor.ok_or("the model has no floor plane (a <geom type=\"plane\"> in <worldbody>)")?;
    let body = body.ok_or("the model has no body geoms")?.0;
    let w = if body.solmix + floor.solmix < 1e-15 { 0.5 } else { body.solmix / (body.solmix + floor.solmix) };
    let mix = |a: f64, b: f64| w * a + (1.0 - w) * b;
    Ok(ContactParams {
        solref: [mix(body.solref[0], floor.solref[0]), mix(body.solref[1], floor.solref[1])],
        solimp: std::array::from_fn(|i| mix(body.solimp[i], floor.solimp[i])),
        margin: body.margin + floor.margin - body.gap - floor.gap,
        condim: body.condim.max(floor.condim),
    })
}

/// A body geom that can touch the floor.
#[derive(Clone, Debug)]
struct ContactGeom {
    body: RigidBodyHandle,
    /// Index into [`super::MjcfModel::bodies`] of the geom's MJCF body (welded bodies share a rigid body).
    model_body: Option<usize>,
    /// The geom's pose in its body's frame, and the centres of its end spheres (one for a sphere) in it.
    local: Pose,
    ends: Vec<Vector>,
    radius: f64,
    /// Friction: the larger of the geom's and the floor's.
    mu: f64,
    /// The body's translational inverse weight at the rest pose (MuJoCo's `body_invweight0[0]`).
    invweight: f64,
}

/// The soft floor contacts of a world (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct SoftContacts {
    geoms: Vec<ContactGeom>,
    floor_z: f64,
    params: ContactParams,
    /// `aref = −b·v − k·imp·(dist − margin)`.
    k: f64,
    b: f64,
}

/// A contact force of the floor on a body geom (world frame): its rigid body, its MJCF body, the force and
/// where it acts.
#[derive(Clone, Copy, Debug)]
pub(super) struct SoftForce {
    pub body: RigidBodyHandle,
    pub model_body: Option<usize>,
    pub force: Vector,
    pub point: Vector,
}

/// One contact: its geom, the point midway between the surfaces, the signed distance.
#[derive(Clone, Copy, Debug)]
pub(super) struct Contact {
    geom: usize,
    point: [f64; 3],
    dist: f64,
}

/// A joint limit its DoF has passed: model DoF `k`, `sign` +1 at the lower limit and −1 at the upper (the row's
/// Jacobian), `pos` the violation (`q − lo` or `hi − q`, negative).
#[derive(Clone, Copy, Debug)]
pub(super) struct PassedLimit {
    pub k: usize,
    pub sign: f64,
    pub pos: f64,
}

/// What a row of the constraint problem is: a limit (model DoF, sign), or a pyramid edge (direction, contact).
#[derive(Clone, Copy, Debug)]
enum Row {
    Limit(usize, f64),
    Edge([f64; 3], usize),
}

/// The rows of one multibody's constraint problem: Jacobian, regulariser `R`, reference acceleration.
#[derive(Default)]
struct Rows {
    jac: Vec<RowDVector<f64>>,
    r: Vec<f64>,
    aref: Vec<f64>,
    what: Vec<Row>,
}

impl Rows {
    fn push(&mut self, jac: RowDVector<f64>, r: f64, aref: f64, what: Row) {
        self.jac.push(jac);
        self.r.push(r);
        self.aref.push(aref);
        self.what.push(what);
    }
}

pub(super) fn v64(v: Vector) -> [f64; 3] {
    [v.x as f64, v.y as f64, v.z as f64]
}

/// The generalised force of a unit force along `dir` applied at `arm` from a link's centre of mass (world frame),
/// `bj` the link's body Jacobian: `dirᵀ·J_lin + (arm × dir)ᵀ·J_ang`, the row of a contact edge.
pub(super) fn point_force_row(bj: &rapier3d::na::Matrix6xX<Real>, arm: [f64; 3], dir: [f64; 3]) -> RowDVector<f64> {
    let t = cross(arm, dir);
    RowDVector::<f64>::from_fn(bj.ncols(), |_, j| (0..3).map(|i| dir[i] * bj[(i, j)] as f64 + t[i] * bj[(3 + i, j)] as f64).sum::<f64>())
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

impl MjcfWorld {
    /// Replaces Rapier's contacts between the body geoms and the floor plane by MuJoCo's soft contacts (see
    /// the module `soft_contact`); contacts between body geoms stay Rapier's. `params` are the
    /// model's ([`super::MjcfModel::floor_contact`]); the time constant is at least twice `model`'s time step.
    /// Errors when a body geom touching the floor is not a capsule or a sphere, when the floor is not
    /// horizontal, or when the geoms hang from more than one multibody.
    pub fn set_mujoco_contacts(&mut self, model: &super::MjcfModel, params: &ContactParams) -> Result<(), String> {
        let mujoco_timestep = model.timestep;
        let floors: Vec<ColliderHandle> = self
            .world
            .colliders
            .iter()
            .filter(|(_, c)| c.user_data == 0 && c.shape().as_halfspace().is_some())
            .map(|(h, _)| h)
            .collect();
        let [floor] = floors[..] else {
            return Err(format!("mujoco_contacts needs exactly one floor plane, the model has {}", floors.len()));
        };
        let fc = &self.world.colliders[floor];
        let normal = fc.position().rotation * Vector::Z;
        if (normal.z as f64) < 1.0 - 1e-9 {
            return Err("mujoco_contacts needs a horizontal floor plane (normal +z)".into());
        }
        let (floor_z, floor_mu, floor_groups) = (fc.position().translation.z as f64, fc.friction() as f64, fc.collision_groups());
        let mut geoms = Vec::new();
        let mut roots = Vec::new();
        for (_, c) in self.world.colliders.iter() {
            let Some(body) = c.parent().filter(|_| c.user_data != 0) else { continue };
            if !c.collision_groups().test(floor_groups) {
                continue;
            }
            let (ends, radius) = if let Some(cap) = c.shape().as_capsule() {
                (vec![cap.segment.a, cap.segment.b], cap.radius)
            } else if let Some(ball) = c.shape().as_ball() {
                (vec![Vector::ZERO], ball.radius)
            } else {
                return Err(format!("mujoco_contacts handles capsule and sphere geoms against the floor; a geom of this model is a {:?}", c.shape().shape_type()));
            };
            let link = self.world.multibody_joints.rigid_body_link(body).ok_or("a geom's body is not in a multibody")?;
            if !roots.contains(&link.multibody) {
                roots.push(link.multibody);
            }
            let local = *c.position_wrt_parent().ok_or("a geom without a parent body")?;
            let model_body = (c.user_data as usize).checked_sub(1);
            geoms.push(ContactGeom { body, model_body, local, ends, radius: radius as f64, mu: (c.friction() as f64).max(floor_mu), invweight: 0.0 });
        }
        if roots.len() > 1 {
            return Err("mujoco_contacts handles the geoms of one multibody (one body tree)".into());
        }
        for g in &mut geoms {
            // MuJoCo's body_invweight0 is the geom's own MJCF body's, at that body's centre of mass (a body
            // welded to its parent shares the parent's rigid body, not its centre of mass)
            let local_com = match g.model_body {
                Some(b) => self.body_offsets[b].transform_point(model.bodies[b].inertia.local_com),
                None => self.world.bodies[g.body].mass_properties().local_mprops.local_com,
            };
            g.invweight = self.translational_invweight(g.body, local_com);
        }
        self.world.colliders[floor].set_collision_groups(InteractionGroups::none());
        let [timeconst, dampratio] = params.solref;
        let timeconst = timeconst.max(2.0 * mujoco_timestep);
        let mut params = *params;
        for i in [0, 1, 3] {
            params.solimp[i] = params.solimp[i].clamp(1e-4, 0.9999);
        }
        let dmax = params.solimp[1];
        self.soft_contacts = Some(SoftContacts {
            geoms,
            floor_z,
            k: 1.0 / (dmax * dmax * timeconst * timeconst * dampratio * dampratio),
            b: 2.0 / (dmax * timeconst),
            params,
        });
        self.rest = super::WorldState::capture(&self.world);
        Ok(())
    }

    /// [`MjcfWorld::set_mujoco_contacts`] with `model`'s parameters and time step, for the env option
    /// `mujoco_contacts` of environment `env`: what the model does not allow is that option's error.
    pub fn use_mujoco_contacts(&mut self, model: &super::MjcfModel, env: &str) -> Result<(), crate::error::EnvError> {
        let refuse = |msg: String| crate::error::EnvError::BadOption {
            env: env.into(),
            key: "mujoco_contacts".into(),
            msg: format!("{}: {msg}; set mujoco_contacts=false to use Rapier's contacts (with rk4_integrator=false where MuJoCo's RK4 step is the default: Hopper-v5, Walker2d-v5, Ant-v5)", model.source),
        };
        let params = model.floor_contact.clone().map_err(refuse)?;
        self.set_mujoco_contacts(model, &params).map_err(refuse)
    }

    /// `trace(Jp M⁻¹ Jpᵀ)/3` for the point `local` (in `body`'s frame) of `body` (Jp its linear Jacobian; M with
    /// armature, no damping) in the current pose: MuJoCo's `body_invweight0[0]` of the MJCF body whose centre of
    /// mass `local` is, when the world is at rest.
    fn translational_invweight(&self, body: RigidBodyHandle, local: Vector) -> f64 {
        let Some(link) = self.world.multibody_joints.rigid_body_link(body) else { return 0.0 };
        let Some(mb) = self.world.multibody_joints.get_multibody(link.multibody) else { return 0.0 };
        let mut mb = mb.clone();
        mb.dof_inverse_inertia(&self.world.bodies);
        let pose = self.link_pose(body);
        let arm = v64(pose.transform_point(local) - pose.transform_point(self.world.bodies[body].mass_properties().local_mprops.local_com));
        let j = mb.body_jacobian(link.id);
        let mut sum = 0.0;
        for r in 0..3 {
            // the point's velocity along axis r: v_com[r] + (ω × arm)[r] = v_com[r] + (arm × e_r)·ω
            let mut e = [0.0; 3];
            e[r] = 1.0;
            let t = cross(arm, e);
            let row = DVector::<Real>::from_fn(mb.ndofs(), |c, _| j[(r, c)] + (0..3).map(|i| t[i] as Real * j[(3 + i, c)]).sum::<Real>());
            if let Some(x) = mb.inv_augmented_mass().solve(&row) {
                sum += row.dot(&x) as f64;
            }
        }
        sum / 3.0
    }

    /// The contacts with the floor now.
    pub(super) fn floor_contacts(&self, c: &SoftContacts) -> Vec<Contact> {
        let mut out = Vec::new();
        for (gi, g) in c.geoms.iter().enumerate() {
            let pose = self.link_pose(g.body) * g.local;
            for e in &g.ends {
                let p = v64(pose.transform_point(*e));
                let dist = p[2] - c.floor_z - g.radius;
                if dist < c.params.margin {
                    out.push(Contact { geom: gi, point: [p[0], p[1], c.floor_z + 0.5 * dist], dist });
                }
            }
        }
        out
    }

    /// Points of contact with the floor (MuJoCo's `ncon` for these pairs).
    pub(super) fn soft_contact_count(&self) -> usize {
        self.soft_contacts.as_ref().map_or(0, |c| self.floor_contacts(c).len())
    }

    /// The pose of `body` from its multibody link (current after a Rapier step, where the rigid body's
    /// mass properties may not be).
    pub(super) fn link_pose(&self, body: RigidBodyHandle) -> Pose {
        self.world
            .multibody_joints
            .rigid_body_link(body)
            .and_then(|l| self.world.multibody_joints.get_multibody(l.multibody)?.link(l.id))
            .map(|l| *l.local_to_world())
            .unwrap_or(*self.world.bodies[body].position())
    }

    /// The forces of MuJoCo's constraint problem at this pose for generalised forces `tau` (one per model DoF,
    /// springs included): the rows of the joint limits passed (`limits`, [`MjcfWorld::set_mujoco_limits`]) and
    /// of the floor contacts (`contacts`, this pose's [`MjcfWorld::floor_contacts`]), solved jointly per
    /// multibody. The limits' forces are added to `tau`; the contacts' are returned, in the world frame, to be
    /// applied for the next Rapier step.
    pub(super) fn solve_constraints(&self, limits: &[PassedLimit], contacts: &[Contact], tau: &mut [f64]) -> Vec<SoftForce> {
        let mj = &self.world.multibody_joints;
        let contact_mb = contacts.first().map(|ct| {
            let c = self.soft_contacts.as_ref().expect("contacts come from soft contacts");
            mj.rigid_body_link(c.geoms[ct.geom].body).expect("a multibody link").multibody
        });
        let mut mbs: Vec<MultibodyIndex> = contact_mb.into_iter().collect();
        for l in limits {
            let m = mj.rigid_body_link(self.dofs[l.k].child).expect("a multibody link").multibody;
            if !mbs.contains(&m) {
                mbs.push(m);
            }
        }
        let mut out = Vec::new();
        for m in mbs {
            let mb = mj.get_multibody(m).expect("the multibody");
            let mine = |k: usize| mj.rigid_body_link(self.dofs[k].child).is_some_and(|l| l.multibody == m);
            let mut rows = Rows::default();
            if let Some(s) = &self.soft_limits {
                let v = mb.generalized_velocity();
                for l in limits.iter().filter(|l| mine(l.k)) {
                    let index = self.dofs[l.k].index;
                    let imp = super::impedance(-l.pos, s.solimp);
                    let mut jac = RowDVector::<f64>::zeros(mb.ndofs());
                    jac[index] = l.sign;
                    let r = (1.0 - imp) / imp * s.invweight[l.k];
                    rows.push(jac, r, -s.b * l.sign * v[index] as f64 - s.k * imp * l.pos, Row::Limit(l.k, l.sign));
                }
            }
            if contact_mb == Some(m) {
                self.contact_rows(mb, contacts, &mut rows);
            }
            let f = self.solve_rows(mb, &rows, tau);
            for (r, what) in rows.what.iter().enumerate() {
                match *what {
                    _ if f[r] == 0.0 => {}
                    Row::Limit(k, sign) => tau[k] += sign * f[r],
                    Row::Edge(d, ci) => {
                        let ct = &contacts[ci];
                        let g = &self.soft_contacts.as_ref().expect("soft contacts").geoms[ct.geom];
                        let force = Vector::new((d[0] * f[r]) as Real, (d[1] * f[r]) as Real, (d[2] * f[r]) as Real);
                        let point = Vector::new(ct.point[0] as Real, ct.point[1] as Real, ct.point[2] as Real);
                        out.push(SoftForce { body: g.body, model_body: g.model_body, force, point });
                    }
                }
            }
        }
        out
    }

    /// The rows of `contacts` (all on `mb`): the edges of each contact's pyramid (or its normal for condim 1).
    fn contact_rows(&self, mb: &Multibody, contacts: &[Contact], rows: &mut Rows) {
        let c = self.soft_contacts.as_ref().expect("soft contacts");
        let v: DVector<f64> = mb.generalized_velocity().map(|x| x as f64);
        for (ci, ct) in contacts.iter().enumerate() {
            let g = &c.geoms[ct.geom];
            let link = self.world.multibody_joints.rigid_body_link(g.body).expect("a multibody link");
            let mu = g.mu;
            let edges: Vec<[f64; 3]> = if c.params.condim == 1 {
                vec![[0.0, 0.0, 1.0]]
            } else {
                let (t1, t2) = self.contact_tangents(g);
                vec![[mu * t1[0], mu * t1[1], 1.0], [-mu * t1[0], -mu * t1[1], 1.0], [mu * t2[0], mu * t2[1], 1.0], [-mu * t2[0], -mu * t2[1], 1.0]]
            };
            let imp = impedance(c.params.margin - ct.dist, c.params.solimp);
            let r0 = (1.0 - imp) / imp * g.invweight;
            let r = if c.params.condim == 1 { r0 } else { 2.0 * mu * mu * (1.0 + mu * mu) * r0 };
            let bj = mb.body_jacobian(link.id);
            let com = v64(self.link_pose(g.body).transform_point(self.world.bodies[g.body].mass_properties().local_mprops.local_com));
            let arm = [ct.point[0] - com[0], ct.point[1] - com[1], ct.point[2] - com[2]];
            for d in edges {
                let row = point_force_row(bj, arm, d);
                let vel = row.dot(&v.transpose());
                rows.push(row, r, -c.b * vel - c.k * imp * (ct.dist - c.params.margin), Row::Edge(d, ci));
            }
        }
    }

    /// The tangents of a contact frame of `g` on the floor, as MuJoCo's: for a capsule, its axis projected on
    /// the floor and the normal × that (`mjc_PlaneCapsule`); for a sphere (or a capsule standing upright), the
    /// world's y and −x (`mju_makeFrame` for the normal +z). They orient the pyramid's edges.
    fn contact_tangents(&self, g: &ContactGeom) -> ([f64; 2], [f64; 2]) {
        if let [a, b] = g.ends[..] {
            let axis = v64((self.link_pose(g.body) * g.local).rotation * (b - a));
            let norm = axis[0].hypot(axis[1]);
            if norm > 1e-12 {
                let t1 = [axis[0] / norm, axis[1] / norm];
                return (t1, [-t1[1], t1[0]]);
            }
        }
        ([0.0, 1.0], [-1.0, 0.0])
    }

    /// The forces of `rows` of `mb`: `argmin ½ fᵀ(A + R) f + fᵀ(J·qacc_smooth − aref)` over `f ≥ 0`, with
    /// `A = J M⁻¹ Jᵀ` and `qacc_smooth = M⁻¹ (τ + gravity − c(q, v) − damping·v)` (`tau` one per model DoF).
    fn solve_rows(&self, mb: &Multibody, rows: &Rows, tau: &[f64]) -> Vec<f64> {
        let n = mb.ndofs();
        let mut force = self.applied_forces(mb, tau);
        subtract_damping(mb, &mut force);
        let jac = DMatrix::from_rows(&rows.jac);
        let lu = self.mass_lu(mb);
        let solve = |x: &DVector<f64>| -> DVector<f64> {
            let x32: DVector<Real> = x.map(|e| e as Real);
            lu.solve(&x32).map(|s| s.map(|e| e as f64)).unwrap_or_else(|| DVector::zeros(n))
        };
        let cols: Vec<DVector<f64>> = (0..jac.nrows()).map(|r| solve(&jac.row(r).transpose())).collect();
        let (minv_jt, qacc) = (DMatrix::from_columns(&cols), solve(&force));
        let a = &jac * &minv_jt;
        let b: Vec<f64> = (0..jac.nrows()).map(|r| jac.row(r).dot(&qacc.transpose()) - rows.aref[r]).collect();
        let r: Vec<f64> = rows.r.iter().map(|x| x.max(1e-15)).collect();
        pgs_nonneg(&a, &r, &b)
    }

    /// `τ + gravity − c(q, v)` on `mb` at its state now, in Rapier's DoF order (`tau` one per model DoF): with
    /// [`subtract_damping`], the forces `qacc_smooth` answers to, and those of MuJoCo's Euler step
    /// ([`MjcfWorld::set_euler_integrator`]).
    pub(super) fn applied_forces(&self, mb: &Multibody, tau: &[f64]) -> DVector<f64> {
        let mut force = DVector::<f64>::zeros(mb.ndofs());
        for (d, t) in self.dofs.iter().zip(tau) {
            if d.root == mb.root().rigid_body_handle() {
                force[d.index] += t;
            }
        }
        force += self.gravity_forces(mb) - self.coriolis_forces(mb);
        force
    }

    /// Adds to `g` the generalised forces on `mb` of the soft contacts' forces in `soft_forces`, in Rapier's DoF order
    /// (`None` if one of them is on a body outside every multibody).
    pub(super) fn add_soft_forces(&self, mb: &Multibody, g: &mut DVector<f64>) -> Option<()> {
        let root = mb.root().rigid_body_handle();
        for f in &self.soft_forces {
            let link = self.world.multibody_joints.rigid_body_link(f.body)?;
            if self.world.multibody_joints.get_multibody(link.multibody)?.root().rigid_body_handle() != root {
                continue;
            }
            let com = self.link_pose(f.body).transform_point(self.world.bodies[f.body].mass_properties().local_mprops.local_com);
            *g += point_force_row(mb.body_jacobian(link.id), v64(f.point - com), v64(f.force)).transpose();
        }
        Some(())
    }

    /// The generalised forces of gravity on `mb` at its pose now, in Rapier's DoF order.
    pub(super) fn gravity_forces(&self, mb: &Multibody) -> DVector<f64> {
        let g = v64(self.world.gravity);
        let mut out = DVector::<f64>::zeros(mb.ndofs());
        for (li, link) in mb.links().enumerate() {
            let m = self.world.bodies[link.rigid_body_handle()].mass() as f64;
            let bj = mb.body_jacobian(li);
            for j in 0..out.len() {
                out[j] += m * (0..3).map(|i| bj[(i, j)] as f64 * g[i]).sum::<f64>();
            }
        }
        out
    }

    /// The generalised Coriolis, centrifugal and gyroscopic forces `c(q, v)` of `mb` at its pose and velocity
    /// now, in Rapier's DoF order (`M·qacc + c` = the applied forces; MuJoCo's `qfrc_bias` less gravity). Each
    /// link's bias acceleration (its acceleration with `qacc = 0`: angular `α`, linear `β` of its centre of
    /// mass) follows from its parent's as in Rapier's own forward dynamics (`Multibody::update_acceleration`),
    /// from public quantities only: with `a` the joint's anchor on the link, `cₚ`, `c` the parent's and the
    /// link's centres of mass, `ωₚ`, `ω` their angular velocities and `u` the joint's linear velocity relative
    /// to the parent (`v(a)` of the link less `v(a)` of the parent),
    /// `α = αₚ + ωₚ × ω`, `β = βₚ + αₚ × (a − cₚ) + ωₚ × (ωₚ × (a − cₚ)) + 2 ωₚ × u + α × (c − a) + ω × (ω × (c − a))`;
    /// the root's generalised velocity is its own (centre of mass, world frame), so its bias is zero. Then
    /// `c = Σ Jᵢᵀ [mᵢ βᵢ; Iᵢ αᵢ + ωᵢ × Iᵢ ωᵢ]` over the links' body Jacobians `Jᵢ`.
    pub(super) fn coriolis_forces(&self, mb: &Multibody) -> DVector<f64> {
        type V3 = rapier3d::na::Vector3<f64>;
        let na = |v: Vector| V3::new(v.x as f64, v.y as f64, v.z as f64);
        let v = mb.generalized_velocity();
        let mut out = DVector::<f64>::zeros(mb.ndofs());
        // per link: centre of mass, its velocity, angular velocity, bias accelerations (angular, linear)
        let mut links: Vec<(V3, V3, V3, V3, V3)> = Vec::with_capacity(mb.num_links());
        for (i, link) in mb.links().enumerate() {
            let rb = &self.world.bodies[link.rigid_body_handle()];
            let pose = link.local_to_world();
            let local = &rb.mass_properties().local_mprops;
            let com = na(pose.transform_point(local.local_com));
            let jv = mb.body_jacobian(i) * v;
            let (lin, w) = (V3::new(jv[0] as f64, jv[1] as f64, jv[2] as f64), V3::new(jv[3] as f64, jv[4] as f64, jv[5] as f64));
            let (mut alpha, mut beta) = (V3::zeros(), V3::zeros());
            if let Some(p) = link.parent_id() {
                let (cp, vp, wp, ap, bp) = links[p];
                let anchor = na(pose.transform_point(link.joint.data.local_frame2.translation));
                let (s02, s23) = (anchor - cp, com - anchor);
                let u = lin - w.cross(&s23) - vp - wp.cross(&s02);
                alpha = ap + wp.cross(&w);
                beta = bp + ap.cross(&s02) + wp.cross(&wp.cross(&s02)) + 2.0 * wp.cross(&u) + alpha.cross(&s23) + w.cross(&w.cross(&s23));
            }
            links.push((com, lin, w, alpha, beta));
            let inertia = |x: V3| -> V3 {
                let r = pose.rotation * local.principal_inertia_local_frame;
                let local_x = r.inverse() * Vector::new(x.x as Real, x.y as Real, x.z as Real);
                let p = local.principal_inertia();
                na(r * Vector::new(p.x * local_x.x, p.y * local_x.y, p.z * local_x.z))
            };
            let (force, torque) = (rb.mass() as f64 * beta, inertia(alpha) + w.cross(&inertia(w)));
            let jac = mb.body_jacobian(i);
            for j in 0..out.len() {
                out[j] += (0..3).map(|k| jac[(k, j)] as f64 * force[k] + jac[(3 + k, j)] as f64 * torque[k]).sum::<f64>();
            }
        }
        out
    }
}

/// `f − damping·v` for `mb`'s joint damping and generalised velocity now.
pub(super) fn subtract_damping(mb: &Multibody, f: &mut DVector<f64>) {
    let v = mb.generalized_velocity();
    for j in 0..f.len() {
        f[j] -= mb.damping()[j] as f64 * v[j] as f64;
    }
}

/// `argmin ½ fᵀ(A + diag(r)) f + fᵀ b` over `f ≥ 0`, by projected Gauss–Seidel (stops when no entry moves by
/// more than 1e-10 of the largest, or after 500 sweeps).
fn pgs_nonneg(a: &DMatrix<f64>, r: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut f = vec![0.0; n];
    for _ in 0..500 {
        let mut change: f64 = 0.0;
        for i in 0..n {
            let diag = a[(i, i)] + r[i];
            let grad = (0..n).map(|j| a[(i, j)] * f[j]).sum::<f64>() + r[i] * f[i] + b[i];
            let new = (f[i] - grad / diag).max(0.0);
            change = change.max((new - f[i]).abs());
            f[i] = new;
        }
        let scale = f.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if change <= 1e-10 * scale.max(1e-12) {
            break;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgs_solves_the_nonnegative_quadratic_program() {
        // unconstrained optimum (A + R)⁻¹(−b) when it is positive
        let a = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
        let f = pgs_nonneg(&a, &[0.0, 0.0], &[-1.0, -1.0]);
        let want = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]).try_inverse().unwrap() * DVector::from_vec(vec![1.0, 1.0]);
        assert!((f[0] - want[0]).abs() < 1e-8 && (f[1] - want[1]).abs() < 1e-8, "{f:?} vs {want:?}");
        // a row pushed away gets no force, the other its own optimum
        let f = pgs_nonneg(&a, &[1.0, 1.0], &[1.0, -2.0]);
        assert_eq!(f[0], 0.0);
        assert!((f[1] - 1.0).abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn contact_parameters_mix_by_mujocos_rules() {
        let xml = r#"<mujoco><default><geom condim="1" margin="0.001" solimp=".8 .8 .01" solref=".02 1"/></default>
            <worldbody><geom name="floor" type="plane" condim="3" size="1 1 .1" solref=".04 1" solmix="3"/>
            <body><geom name="a" type="sphere" size=".1"/><geom name="b" type="capsule" size=".1 .2"/></body></worldbody></mujoco>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let p = floor_contact_params(&doc).unwrap();
        assert_eq!(p.condim, 3);
        assert!((p.margin - 0.002).abs() < 1e-15);
        assert!((p.solref[0] - (0.25 * 0.02 + 0.75 * 0.04)).abs() < 1e-15, "{p:?}");
        assert_eq!(p.solimp, [0.8, 0.8, 0.01, 0.5, 2.0]);
        let differ = xml.replace(r#"name="b""#, r#"name="b" margin="0.01""#);
        let err = floor_contact_params(&roxmltree::Document::parse(&differ).unwrap()).unwrap_err();
        assert!(err.contains("\"a\" and \"b\""), "{err}");
        let direct = xml.replace(r#"solref=".04 1""#, r#"solref="-1000 -10""#);
        let err = floor_contact_params(&roxmltree::Document::parse(&direct).unwrap()).unwrap_err();
        assert!(err.contains("direct"), "{err}");
    }
}
