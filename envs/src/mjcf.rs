//! Models from MJCF files: [`MjcfModel`] loads a MuJoCo model through dimforge's `rapier3d-mjcf`,
//! [`MjcfWorld`] simulates it as Rapier multibodies with MuJoCo's joint-space semantics.
//!
//! What the loader maps, and what this module adds on top (measured against MuJoCo, see the
//! README's "Environments from MJCF files"):
//!
//! | MJCF | handled by | how |
//! |---|---|---|
//! | bodies, poses, `<inertial>`, geoms → mass (`inertiafromgeom`), default classes, includes | loader | exact (f32) |
//! | `hinge`, `slide` joints, `range`/`limited` | loader | multibody joints with limit constraints (Rapier's, practically hard: see `limit_natural_frequency`) |
//! | joint `armature`, `damping` | this module | written into the multibody's per-DoF armature and damping after assembly (Rapier's default damping of 0.1 on undamped DoFs is removed) |
//! | `<motor>` actuators: `gear`, `ctrlrange`, `ctrllimited` | this module | generalised force `gear · clip(ctrl)` as equal and opposite body torques (hinge) or forces (slide) |
//! | `<option timestep gravity>` | loader + env options | defaults of the env's `timestep`; gravity as written |
//! | `<option density viscosity>` | this module | MuJoCo's inertia-box fluid model on every body ([`crate::fluid`]) |
//! | `<option integrator>` (RK4, Euler) | — or this module | Rapier integrates with semi-implicit Euler, its Coriolis terms semi-implicit; refine with `substeps`; MuJoCo's `Euler` step as a correction of Rapier's with [`MjcfWorld::set_euler_integrator`] (the env option `euler_integrator`) or taken whole with [`MjcfWorld::set_mujoco_euler`] (`mujoco_euler`), its `RK4` step with [`MjcfWorld::set_rk4_integrator`] (`rk4_integrator`; a floating base with joints, fluid forces, MuJoCo's limits and floor contacts) |
//! | joint `solref`/`solimp` (soft limits) | — | Rapier limits, softness from `limit_natural_frequency` |
//! | joint `stiffness`, `springref` | this module | MuJoCo's explicit passive force `-stiffness · (qpos − springref)` per physics step (the loader's implicit multibody spring is switched off) |
//! | `plane` and body geoms, `contype`/`conaffinity` | loader + this module | colliders (the loader keeps planes only when asked); MuJoCo's OR rule through Rapier's `Or` group test; bodies jointed to the world touch the world's geoms |
//! | geom `friction`, `condim` 1 or 3 | loader + this module | Coulomb friction, the larger coefficient of the two geoms (MuJoCo's rule; a contact's condim is the larger of the two, so a condim-1 geom on a condim-3 floor has friction); two condim-1 geoms touching get friction too (not MuJoCo's frictionless contact); rolling and torsional friction (condim 4, 6) refused |
//! | geom `solref`/`solimp`/`margin`/`gap`/`solmix` (soft contacts) | — or this module | Rapier's contact softness, [`RapierSettings::contact`]; or, against the floor plane, MuJoCo's soft-contact law as forces ([`MjcfWorld::set_mujoco_contacts`], module `soft_contact`) |
//! | (no MJCF element) | this module | with contacts, a world-rooted joint's locked linear axes across gravity are freed (not model DoFs): the workaround for a Rapier friction defect, see [`hidden_linear_freedom`] |
//!
//! | several joints in one body, bodies without joints | this module ([`simplify_robot`]) | joints at one anchor along the body's axes (slides, then at most one hinge) become one Rapier joint with several free axes; other chains (the Humanoid's hips: three hinges about different axes) stay the loader's chain of massless links, and a body does not touch its MJCF parent across them ([`ParentChildFilter`], MuJoCo's parent–child exclusion); a jointless body is welded into its parent (mass and colliders move there); each tree hanging from the world is its own multibody; a tree that nothing can move (unactuated slides across gravity, the Reacher's target) sleeps while at rest |
//! | a free joint on a body under `<worldbody>` | this module ([`recentre_on_com`]) | the multibody's floating root, its rigid body at the body's centre of mass (Rapier moves a free root's frame with its centre of mass's velocity); qpos, qvel and the mass matrix in MuJoCo's layout (the body frame's origin and its velocity, angular velocity in the body frame) |
//! | `<tendon><fixed>` without stiffness, damping, friction loss, armature or range | — | accepted: such a tendon exerts no force (Gymnasium's humanoid.xml); any that would is refused |
//!
//! Anything else that changes the dynamics is refused by [`MjcfModel::from_str`] with an error
//! naming the element and what to do (see [`check_supported`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rapier3d::prelude::*;
use rapier3d_mjcf::mjcf_rs::extras::ActuatorKind;
use rapier3d_mjcf::{MjcfDofKind, MjcfJoint, MjcfLoaderOptions, MjcfMultibodyOptions, MjcfRobot};

use crate::error::EnvError;
use crate::fluid::inertia_box_force_torque;
use crate::rapier_world::{configure_integration, WorldState};

mod soft_contact;
pub use soft_contact::ContactParams;

/// The MJCF files this crate ships, by the name Gymnasium gives them.
pub const STOCK_FILES: [(&str, &str); 9] = [
    ("swimmer.xml", include_str!("../models/swimmer.xml")),
    ("reacher.xml", include_str!("../models/reacher.xml")),
    ("inverted_pendulum.xml", include_str!("../models/inverted_pendulum.xml")),
    ("inverted_double_pendulum.xml", include_str!("../models/inverted_double_pendulum.xml")),
    ("half_cheetah.xml", include_str!("../models/half_cheetah.xml")),
    ("hopper.xml", include_str!("../models/hopper.xml")),
    ("walker2d_v5.xml", include_str!("../models/walker2d_v5.xml")),
    ("ant.xml", include_str!("../models/ant.xml")),
    ("humanoid.xml", include_str!("../models/humanoid.xml")),
];

/// Kind of a joint's single degree of freedom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JointKind {
    /// Rotation about the joint axis (rad).
    Hinge,
    /// Translation along the joint axis (m).
    Slide,
}

/// One degree of freedom, in MuJoCo's qpos order.
#[derive(Clone, Debug, PartialEq)]
pub struct JointSpec {
    pub name: String,
    pub kind: JointKind,
    /// `range` when the joint is limited.
    pub range: Option<[f64; 2]>,
    pub armature: f64,
    pub damping: f64,
    /// MJCF `ref`: qpos of the joint when the body is at its declared pose.
    pub reference: f64,
    /// MJCF `stiffness`: the passive spring's generalised force is `-stiffness · (qpos − springref)`.
    pub stiffness: f64,
    /// MJCF `springref` (qpos at which the spring is relaxed).
    pub springref: f64,
    /// MJCF `margin`: MuJoCo's limit acts from this distance to the range on (MuJoCo's soft limits,
    /// [`MjcfWorld::set_mujoco_limits`]; Rapier's limits ignore it).
    pub margin: f64,
    /// Index of the Rapier joint that carries this DoF (after [`simplify_robot`]).
    robot_joint: usize,
    /// The DoF's coordinate in that joint (0..3 linear, 3..6 angular).
    coord: usize,
}

/// One `<motor>` actuator.
#[derive(Clone, Debug, PartialEq)]
pub struct ActuatorSpec {
    pub name: String,
    /// Index into [`MjcfModel::joints`].
    pub joint: usize,
    pub gear: f64,
    /// `ctrlrange` when the control is clipped (`ctrllimited`).
    pub ctrl_range: Option<[f64; 2]>,
}

/// One body of the MJCF model (not the world, not the loader's intermediate bodies).
#[derive(Clone, Debug, PartialEq)]
pub struct BodySpec {
    pub name: String,
    pub mass: f64,
    /// Index into the loader's body list of the body whose rigid body carries this one (itself,
    /// or the parent it is welded to), and this body's frame in it.
    carrier: usize,
    offset: Pose,
    /// Index into the loader's body list of the body itself.
    loader: usize,
    /// The body's own mass properties in its frame (before welding moves them to its carrier).
    inertia: MassProperties,
}

/// A loaded MJCF model: the loader's description (not yet in a world) and what the environments
/// read from it. Cheap to share (`Arc`).
#[derive(Clone, Debug)]
pub struct MjcfModel {
    /// Where the model came from (a path, or `stock:NAME`).
    pub source: String,
    robot: Arc<MjcfRobot>,
    /// `<option timestep>`.
    pub timestep: f64,
    /// `<option gravity>`.
    pub gravity: [f64; 3],
    /// The joint limits' `solreflimit` (time constant, damping ratio) and `solimplimit` (dmin, dmax,
    /// width, midpoint, power), from the top-level `<default><joint>` or MuJoCo's defaults: what
    /// [`MjcfWorld::set_mujoco_limits`] simulates.
    pub limit_solref: [f64; 2],
    pub limit_solimp: [f64; 5],
    /// The contact parameters of the body geoms against the floor plane (MuJoCo's mixing of the two
    /// geoms' `solref`, `solimp`, `margin`, `gap`, `condim`), for [`MjcfWorld::set_mujoco_contacts`];
    /// `Err` says why the model's cannot be used there.
    pub floor_contact: Result<ContactParams, String>,
    /// `<option density>` (fluid), 0 when absent.
    pub density: f64,
    /// `<option viscosity>` (fluid), 0 when absent.
    pub viscosity: f64,
    /// The hinge and slide degrees of freedom in MuJoCo's qpos (= qvel) order, after the free
    /// joint's if there is one.
    pub joints: Vec<JointSpec>,
    /// Index into [`MjcfModel::bodies`] of the floating base (a free joint), if any. qpos then starts
    /// with its position and orientation (quaternion w, x, y, z: 7 values) and qvel with its linear
    /// velocity (world frame) and angular velocity (body frame: 6 values), as in MuJoCo.
    pub free_root: Option<usize>,
    /// Actuators in MuJoCo's order (the action's order).
    pub actuators: Vec<ActuatorSpec>,
    /// Bodies in MuJoCo's order, world excluded.
    pub bodies: Vec<BodySpec>,
    /// Capsule and sphere geoms of the bodies (for pictures): body index, the two end centres in the
    /// body frame (equal for a sphere), radius.
    pub capsules: Vec<(usize, [f64; 3], [f64; 3], f64)>,
}

fn mjcf_err(source: &str, msg: impl std::fmt::Display) -> EnvError {
    EnvError::BadOption { env: "MJCF".into(), key: "xml_file".into(), msg: format!("{source}: {msg}") }
}

/// Rejects what the environments cannot simulate faithfully, naming the element and what to do.
/// Elements that only affect looks (assets, cameras, lights, sites, visual settings) pass.
pub fn check_supported(xml: &str, source: &str) -> Result<(), EnvError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| mjcf_err(source, format!("not valid XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "mujoco" {
        return Err(mjcf_err(
            source,
            format!("the root element is <{}>, an MJCF file starts with <mujoco>", root.tag_name().name()),
        ));
    }
    for n in root.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        let parent = n.parent_element().map(|p| p.tag_name().name()).unwrap_or("");
        let line = doc.text_pos_at(n.range().start).row;
        let fail = |what: String| Err(mjcf_err(source, format!("line {line}: <{tag}> {what}")));
        match tag {
            "extension" | "plugin" | "flexcomp" | "flex" | "skin" | "composite" | "replicate" => {
                return fail("is not supported by rebel-rs's MJCF environments; remove it (plugins, deformables and procedural bodies have no Rapier counterpart here)".into())
            }
            "freejoint" => {
                if let Some(why) = free_joint_problem(&n) {
                    return fail(why);
                }
            }
            "spatial" if parent == "tendon" => {
                return fail("(a spatial tendon) is not supported: drive the joints with <motor joint=...> instead".into())
            }
            // A fixed tendon with no stiffness, damping, friction, armature or limit exerts no force
            // (MuJoCo computes its length and nothing else): Gymnasium's humanoid.xml has two.
            "fixed" if parent == "tendon" => {
                if let Some(why) = active_tendon(&n) {
                    return fail(why);
                }
            }
            "tendon" if parent == "default" => {
                if let Some(why) = active_tendon(&n) {
                    return fail(why);
                }
            }
            "connect" | "weld" | "joint" | "tendon" | "distance" if parent == "equality" => {
                return fail("(an equality constraint) is not supported: rebel-rs simulates the body tree as one Rapier multibody without loop closures; remove the constraint".into())
            }
            "general" | "position" | "velocity" | "intvelocity" | "damper" | "cylinder" | "muscle" | "adhesion"
                if parent == "actuator" =>
            {
                return fail("is not supported: only <motor> actuators (torque or force = gear · ctrl) are; write the actuator as <motor joint=... gear=... ctrlrange=...>".into())
            }
            "joint" if parent == "body" || parent == "default" => {
                match n.attribute("type") {
                    Some("free") if parent == "body" => {
                        if let Some(why) = free_joint_problem(&n) {
                            return fail(why);
                        }
                    }
                    Some(t) if t != "hinge" && t != "slide" => {
                        return fail(format!("type=\"{t}\" is not supported: use hinge or slide joints (three slides and a hinge make a planar root), or one free joint on a body directly under <worldbody>"));
                    }
                    _ => {}
                }
                for a in ["frictionloss", "springdamper"] {
                    if let Some(v) = n.attribute(a) {
                        let zero = v.split_whitespace().all(|x| x.parse::<f64>().map(|f| f == 0.0).unwrap_or(false));
                        if !zero {
                            return fail(format!("{a}=\"{v}\" is not supported (joint friction loss and spring-damper time constants are not simulated faithfully); remove it or set it to 0 (plain `stiffness` and `springref` are supported)"));
                        }
                    }
                }
            }
            "motor" if parent == "actuator"
                && n.attribute("joint").is_none() => {
                    return fail("must name a joint (joint=\"...\"): tendon, site and body transmissions are not supported".into());
                }
            "option" => {
                for a in ["wind", "magnetic"] {
                    if let Some(v) = n.attribute(a) {
                        if v.split_whitespace().any(|x| x.parse::<f64>().map(|f| f != 0.0).unwrap_or(true)) {
                            return fail(format!("{a}=\"{v}\" is not supported; remove it"));
                        }
                    }
                }
            }
            "pair" | "exclude" if parent == "contact" => {
                return fail("(an explicit contact pair or exclusion) is not supported: contacts follow contype/conaffinity only; remove it".into())
            }
            "geom"
                if n.attribute("condim").is_some_and(|v| v.trim() != "3" && v.trim() != "1")
                    // a geom that touches nothing (contype = conaffinity = 0) may say anything
                    && !(n.attribute("contype") == Some("0") && n.attribute("conaffinity") == Some("0")) =>
            {
                return fail(format!("condim=\"{}\" is not supported: contacts have sliding friction (condim 3) or none (condim 1), no torsional or rolling friction; set it to 3", n.attribute("condim").unwrap_or("")));
            }
            "geom"
                if n.attribute("fluidshape").is_some_and(|v| v != "none") => {
                    return fail("fluidshape (MuJoCo's ellipsoid fluid model) is not supported: the inertia-box model (<option density viscosity>) is; remove fluidshape".into());
                }
            _ => {}
        }
    }
    Ok(())
}

/// Why a fixed tendon (or a tendon default) would exert a force, if it would: tendon forces are not
/// simulated, so only tendons that exert none pass.
fn active_tendon(n: &roxmltree::Node) -> Option<String> {
    let nonzero = |v: &str| v.split_whitespace().any(|x| !x.parse::<f64>().is_ok_and(|f| f == 0.0));
    ["stiffness", "damping", "frictionloss", "armature", "range"]
        .iter()
        .find_map(|a| n.attribute(*a).filter(|v| nonzero(v)).map(|v| format!("{a}=\"{v}\"")))
        .or_else(|| n.attribute("limited").filter(|v| *v == "true").map(|_| "limited=\"true\"".to_string()))
        .map(|what| format!("with {what} is not supported (tendon forces and limits are not simulated; a tendon without stiffness, damping, friction loss, armature or range exerts none and loads); remove it or drive the joints with <motor joint=...>"))
}

/// Why a free joint cannot be simulated, if it cannot: it must sit on a body directly under
/// `<worldbody>` (a floating base, the multibody's root), without passive forces of its own.
fn free_joint_problem(n: &roxmltree::Node) -> Option<String> {
    let body = n.parent_element();
    let top = body.and_then(|b| b.parent_element()).is_some_and(|w| w.has_tag_name("worldbody"));
    if !body.is_some_and(|b| b.has_tag_name("body")) || !top {
        return Some(
            "(a free joint) is supported only on a body directly under <worldbody> (the floating base of a robot)".into(),
        );
    }
    ["armature", "damping", "stiffness", "frictionloss"].iter().find_map(|a| {
        let v = n.attribute(*a)?;
        (v.trim().parse::<f64>() != Ok(0.0)).then(|| {
            format!("{a}=\"{v}\" on a free joint is not supported (the floating base has no passive forces here); set it to 0")
        })
    })
}

/// The joint limits' `solreflimit` and `solimplimit` of the top-level `<default><joint>` (MuJoCo's
/// defaults (0.02, 1) and (0.9, 0.95, 0.001, 0.5, 2) where absent; missing trailing `solimp` values take
/// MuJoCo's). Values given per joint or per default class are not read.
fn limit_solver_options(doc: &roxmltree::Document) -> ([f64; 2], [f64; 5]) {
    let mut solref = [0.02, 1.0];
    let mut solimp = [0.9, 0.95, 0.001, 0.5, 2.0];
    let joint = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("default"))
        .and_then(|d| d.children().find(|n| n.has_tag_name("joint")));
    let read = |attr: &str, out: &mut [f64]| {
        if let Some(v) = joint.and_then(|j| j.attribute(attr)) {
            for (o, x) in out.iter_mut().zip(v.split_whitespace()) {
                if let Ok(x) = x.parse::<f64>() {
                    *o = x;
                }
            }
        }
    };
    read("solreflimit", &mut solref);
    read("solimplimit", &mut solimp);
    (solref, solimp)
}

/// Each DoF's joint `margin` from the parsed document (its default classes applied), matched to the DoFs in
/// qpos order (MuJoCo's: the bodies' document order, each body's joints in order; a free joint has no margin that
/// matters here and is skipped). An error only where a joint has a margin and the match fails.
fn set_joint_margins(joints: &mut [JointSpec], model: &rapier3d_mjcf::mjcf_rs::Model, source: &str) -> Result<(), EnvError> {
    use rapier3d_mjcf::mjcf_rs::body::JointType;
    let doc: Vec<(Option<&str>, f64)> = model
        .bodies_iter()
        .flat_map(|(_, b)| b.body.joints.iter())
        .filter(|j| j.type_ != JointType::Free)
        .map(|j| (j.name.as_deref(), j.margin))
        .collect();
    if doc.iter().all(|(_, m)| *m == 0.0) {
        return Ok(());
    }
    let same = doc.len() == joints.len()
        && doc.iter().zip(joints.iter()).all(|((name, _), j)| name.is_none_or(|n| n == j.name));
    if !same {
        return Err(mjcf_err(source, "a joint margin that could not be matched to its degree of freedom: name every joint, or remove margin"));
    }
    for ((_, m), j) in doc.iter().zip(joints.iter_mut()) {
        j.margin = *m;
    }
    Ok(())
}

/// `<option density viscosity>` (0 when absent).
fn fluid_options(doc: &roxmltree::Document) -> (f64, f64) {
    let opt = doc.root_element().children().find(|n| n.has_tag_name("option"));
    let get = |a: &str| opt.and_then(|o| o.attribute(a)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0);
    (get("density"), get("viscosity"))
}

impl MjcfModel {
    /// One of the shipped files (`swimmer.xml`, ...) by name, or else a path to an MJCF file.
    pub fn load(xml_file: &str) -> Result<Self, EnvError> {
        if let Some((name, text)) = STOCK_FILES.iter().find(|(n, _)| *n == xml_file) {
            return Self::from_str(text, Path::new("."), &format!("stock:{name}"));
        }
        let path = PathBuf::from(xml_file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let stock: Vec<&str> = STOCK_FILES.iter().map(|(n, _)| *n).collect();
            mjcf_err(
                xml_file,
                format!(
                    "cannot read it ({e}); give a path to an MJCF file, or one of the shipped models: {}",
                    stock.join(", ")
                ),
            )
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Self::from_str(&text, &base, xml_file)
    }

    /// Parses MJCF text (`<include>`s resolve against `base_dir`).
    pub fn from_str(xml: &str, base_dir: &Path, source: &str) -> Result<Self, EnvError> {
        check_supported(xml, source)?;
        // Asymmetric: each collider keeps its geom's contype as memberships and conaffinity as
        // filter, from which `MjcfWorld::build` makes MuJoCo's OR rule exactly.
        let opts = MjcfLoaderOptions {
            disable_joint_motors: true,
            contact_filter_mode: rapier3d_mjcf::ContactFilterMode::Asymmetric,
            // the loader drops planes by default (for callers that bring their own ground)
            skip_plane_geoms: false,
            ..MjcfLoaderOptions::default()
        };
        let (mut robot, model) = MjcfRobot::from_str(xml, opts, base_dir)
            .map_err(|e| mjcf_err(source, format!("the MJCF loader refused it: {e:#}")))?;
        // valid XML: check_supported parsed it
        let doc = roxmltree::Document::parse(xml).map_err(|e| mjcf_err(source, format!("not valid XML: {e}")))?;
        let (density, viscosity) = fluid_options(&doc);
        let (limit_solref, limit_solimp) = limit_solver_options(&doc);
        let floor_contact = soft_contact::floor_contact_params(&doc);

        let mut joints = Vec::new();
        let mut free_body = None;
        for d in &robot.qpos_dofs {
            let kind = match d.kind {
                MjcfDofKind::Hinge => JointKind::Hinge,
                MjcfDofKind::Slide => JointKind::Slide,
                MjcfDofKind::Free if joints.is_empty() && free_body.is_none() => {
                    free_body = Some(d.body);
                    continue;
                }
                MjcfDofKind::Free => {
                    return Err(mjcf_err(
                        source,
                        "a free joint is supported only as the first joint of the model (one floating base, first in qpos)",
                    ))
                }
                k => {
                    return Err(mjcf_err(source, format!("a {k:?} joint is not supported: use hinge or slide joints")))
                }
            };
            if d.scale != 1.0 {
                return Err(mjcf_err(source, "a scaled model (loader option) is not supported"));
            }
            let ji = d.joint.ok_or_else(|| mjcf_err(source, "a degree of freedom without a joint"))?;
            let j = &robot.joints[ji];
            let axis = (0..6).find(|i| !j.joint.locked_axes.contains(JointAxesMask::from_bits_truncate(1 << i)));
            let Some(axis) = axis else {
                return Err(mjcf_err(source, "a joint with no free axis"));
            };
            let range = j
                .joint
                .limit_axes
                .contains(JointAxesMask::from_bits_truncate(1 << axis))
                .then(|| [j.joint.limits[axis].min as f64, j.joint.limits[axis].max as f64]);
            joints.push(JointSpec {
                name: j.name.clone().unwrap_or_default(),
                kind,
                range,
                armature: j.armature_per_dof as f64,
                damping: j.damping_per_dof as f64,
                reference: d.reference as f64,
                stiffness: j.spring_stiffness_per_dof as f64,
                springref: (j.spring_ref + d.reference) as f64,
                margin: 0.0,
                robot_joint: ji,
                coord: axis,
            });
        }

        set_joint_margins(&mut joints, &model, source)?;

        let mut actuators = Vec::new();
        for a in &robot.actuators {
            let act = &a.actuator;
            let name = act.name.clone().unwrap_or_else(|| format!("actuator {}", actuators.len()));
            if act.kind != ActuatorKind::Motor {
                return Err(mjcf_err(
                    source,
                    format!("actuator {name:?} is a {:?}: only <motor> actuators are supported", act.kind),
                ));
            }
            let joint =
                a.joint_index.and_then(|ji| joints.iter().position(|j| j.robot_joint == ji)).ok_or_else(|| {
                    mjcf_err(source, format!("actuator {name:?} drives no hinge or slide joint: give it joint=\"...\""))
                })?;
            let limited = match act.ctrl_limited {
                rapier3d_mjcf::mjcf_rs::types::Tristate::True => true,
                rapier3d_mjcf::mjcf_rs::types::Tristate::False => false,
                _ => act.ctrl_range.is_some() && model.compiler.autolimits,
            };
            let ctrl_range =
                if limited {
                    Some(act.ctrl_range.ok_or_else(|| {
                        mjcf_err(source, format!("actuator {name:?} is ctrllimited without a ctrlrange"))
                    })?)
                } else {
                    None
                };
            actuators.push(ActuatorSpec { name, joint, gear: act.gear[0], ctrl_range });
        }

        let mut bodies: Vec<BodySpec> = robot
            .bodies
            .iter()
            .enumerate()
            .filter(|(i, b)| *i != 0 && !b.is_intermediate)
            .map(|(i, b)| BodySpec {
                name: b.name.clone().unwrap_or_default(),
                mass: b.mass as f64,
                loader: i,
                carrier: i,
                offset: Pose::IDENTITY,
                inertia: match b.body.mass_properties().additional_local_mprops.as_deref() {
                    Some(RigidBodyAdditionalMassProps::MassProps(m)) => *m,
                    _ => MassProperties::default(),
                },
            })
            .collect();
        let free_root = free_body.map(|fb| bodies.iter().position(|b| b.loader == fb).expect("the free body is a body"));
        // Each collider remembers its MJCF body (welding moves colliders to another rigid body):
        // 1 + index into `bodies`, 0 for the world's.
        for (i, b) in robot.bodies.iter_mut().enumerate() {
            let tag = bodies.iter().position(|s| s.loader == i).map_or(0, |k| k as u128 + 1);
            for c in &mut b.colliders {
                c.user_data = tag;
            }
        }
        let mut capsules = Vec::new();
        for (bi, b) in bodies.iter().enumerate() {
            let rb: &rapier3d_mjcf::MjcfBody = &robot.bodies[b.carrier];
            let shapes = rb.visual_meshes.iter().map(|m| (m.shape.clone(), m.local_pose)).chain(
                rb.colliders
                    .iter()
                    .map(|c| (c.shared_shape().clone(), c.position_wrt_parent().copied().unwrap_or(*c.position()))),
            );
            for (shape, pose) in shapes {
                let p = |v: Vector| {
                    let w = pose.transform_point(v);
                    [w.x as f64, w.y as f64, w.z as f64]
                };
                if let Some(c) = shape.as_capsule() {
                    capsules.push((bi, p(c.segment.a), p(c.segment.b), c.radius as f64));
                } else if let Some(ball) = shape.as_ball() {
                    // a sphere draws as a capsule of length 0
                    capsules.push((bi, p(Vector::ZERO), p(Vector::ZERO), ball.radius as f64));
                }
            }
        }
        let simple = simplify_robot(&mut robot, density == 0.0 && viscosity == 0.0);
        for j in &mut joints {
            let old = j.robot_joint;
            j.robot_joint =
                simple.joint_map[old].ok_or_else(|| mjcf_err(source, format!("joint {:?} was welded away", j.name)))?;
            j.coord = simple.joint_coord[old].unwrap_or(j.coord);
        }
        for b in &mut bodies {
            (b.carrier, b.offset) = simple.carrier[b.carrier];
        }
        if let Some(r) = free_root.map(|fr| bodies[fr].carrier) {
            if let Some(back) = recentre_on_com(&mut robot, r) {
                for b in bodies.iter_mut().filter(|b| b.carrier == r) {
                    b.offset = back * b.offset;
                }
            }
        }
        let g = robot.gravity;
        Ok(MjcfModel {
            capsules,
            source: source.to_string(),
            timestep: model.option.timestep,
            gravity: [g.x as f64, g.y as f64, g.z as f64],
            limit_solref,
            limit_solimp,
            floor_contact,
            density,
            viscosity,
            joints,
            free_root,
            actuators,
            bodies,
            robot: Arc::new(robot),
        })
    }

    /// Number of generalised coordinates (MuJoCo's `nq`: 7 for a free joint, 1 per hinge or slide).
    pub fn nq(&self) -> usize {
        self.joints.len() + if self.free_root.is_some() { 7 } else { 0 }
    }

    /// Number of generalised velocities (MuJoCo's `nv`: 6 for a free joint, 1 per hinge or slide).
    pub fn nv(&self) -> usize {
        self.joints.len() + if self.free_root.is_some() { 6 } else { 0 }
    }

    /// Number of actuators.
    pub fn nu(&self) -> usize {
        self.actuators.len()
    }

    /// Index of the body named `name`.
    pub fn body(&self, name: &str) -> Option<usize> {
        self.bodies.iter().position(|b| b.name == name)
    }

    /// Index of the joint named `name`.
    pub fn joint(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| j.name == name)
    }

    /// Error unless the model has `nq` coordinates and `nu` actuators (what environment `env`
    /// needs to interpret it).
    /// The action space of the model's actuators: each `ctrlrange` where the control is clipped, unbounded
    /// otherwise.
    pub fn action_space(&self) -> crate::env::BoxSpace {
        crate::env::BoxSpace::new(
            self.actuators.iter().map(|a| a.ctrl_range.map_or(f32::NEG_INFINITY, |r| r[0] as f32)).collect(),
            self.actuators.iter().map(|a| a.ctrl_range.map_or(f32::INFINITY, |r| r[1] as f32)).collect(),
        )
    }

    /// Error unless the model is a floating base (a free root) with `hinges` hinges, as many actuators, and
    /// `bodies` bodies, for environment `env` whose shipped model is `shipped`.
    pub fn expect_free_base(&self, env: &str, hinges: usize, bodies: usize, shipped: &str) -> Result<(), EnvError> {
        if self.free_root.is_none()
            || self.joints.len() != hinges
            || self.nu() != hinges
            || self.bodies.len() != bodies
            || self.joints.iter().any(|j| j.kind != JointKind::Hinge)
        {
            return Err(EnvError::BadOption {
                env: env.into(),
                key: "xml_file".into(),
                msg: format!(
                    "{} has {} free root, {} joints, {} actuators and {} bodies; {env} needs a free root, {hinges} hinges, {hinges} actuators and {bodies} bodies (start from the shipped {shipped})",
                    self.source,
                    if self.free_root.is_some() { "a" } else { "no" },
                    self.joints.len(),
                    self.nu(),
                    self.bodies.len()
                ),
            });
        }
        Ok(())
    }

    pub fn expect_shape(&self, env: &str, nq: Option<usize>, nu: usize) -> Result<(), EnvError> {
        if self.free_root.is_some() {
            return Err(EnvError::BadOption {
                env: env.into(),
                key: "xml_file".into(),
                msg: format!(
                    "{} has a free-floating root (a free joint); {env} needs its root attached by hinge/slide joints (start from the shipped model, docs/adding-an-environment.md)",
                    self.source
                ),
            });
        }
        let ok_nq = nq.is_none_or(|n| n == self.nq());
        if !ok_nq || self.nu() != nu {
            let want_nq = nq.map(|n| n.to_string()).unwrap_or_else(|| "any number of".into());
            return Err(EnvError::BadOption {
                env: env.into(),
                key: "xml_file".into(),
                msg: format!(
                    "{} has {} hinge/slide joints and {} actuators; {env} needs {want_nq} joints and {nu} actuators (start from the shipped model, docs/adding-an-environment.md)",
                    self.source,
                    self.nq(),
                    self.nu()
                ),
            });
        }
        Ok(())
    }
}

/// What [`simplify_robot`] did to the loader's description.
struct Simplified {
    /// New index in `robot.joints` of each original joint (`None`: welded away).
    joint_map: Vec<Option<usize>>,
    /// Per original joint: the coordinate (0..3 linear, 3..6 angular) of its DoF in the joint
    /// that now carries it.
    joint_coord: Vec<Option<usize>>,
    /// Per loader body: the body whose rigid body now carries it, and its pose in that body.
    /// (Bodies added by the pass come after the loader's.)
    carrier: Vec<(usize, Pose)>,
}

/// MuJoCo's exclusion of contacts between a body and its parent, where Rapier does not see it: a body
/// whose joints stay a chain (several hinges with different axes, as the Humanoid's hips) hangs from
/// its MJCF parent through massless intermediate links, and Rapier only filters the pairs a joint
/// connects directly. These pairs get a contact-pair hook that drops them (only their colliders run
/// it; a model without such chains has none).
#[derive(Clone, Debug, Default)]
struct ParentChildFilter {
    pairs: Vec<(RigidBodyHandle, RigidBodyHandle)>,
}

impl ParentChildFilter {
    /// The (parent, child) pairs of loader body indices that a chain of intermediate links separates.
    fn chained(robot: &MjcfRobot) -> Vec<(usize, usize)> {
        let real = |i: usize| i != 0 && !robot.bodies[i].is_intermediate;
        let mut pairs = Vec::new();
        for j in robot.joints.iter().filter(|j| real(j.link2)) {
            let mut top = j.link1;
            while !real(top) {
                let Some(up) = robot.joints.iter().find(|k| k.link2 == top) else { break };
                top = up.link1;
            }
            if top != j.link1 && real(top) {
                pairs.push((top, j.link2));
            }
        }
        pairs
    }

    fn new(chained: &[(usize, usize)], handles: &[Option<rapier3d_mjcf::MjcfBodyHandle>], world: &mut PhysicsWorld) -> Self {
        let handle = |i: usize| handles[i].as_ref().map(|h| h.body);
        let pairs: Vec<(RigidBodyHandle, RigidBodyHandle)> =
            chained.iter().filter_map(|&(a, b)| handle(a).zip(handle(b))).collect();
        for &(a, b) in &pairs {
            for h in world.bodies[a].colliders().iter().chain(world.bodies[b].colliders()).copied().collect::<Vec<_>>() {
                world.colliders[h].set_active_hooks(ActiveHooks::FILTER_CONTACT_PAIRS);
            }
        }
        ParentChildFilter { pairs }
    }

    /// Whether contacts between the two bodies are left out (MuJoCo's parent–child exclusion).
    fn excludes(&self, (x, y): (RigidBodyHandle, RigidBodyHandle)) -> bool {
        self.pairs.iter().any(|&(a, b)| (a, b) == (x, y) || (b, a) == (x, y))
    }
}

impl PhysicsHooks for ParentChildFilter {
    fn filter_contact_pair(&self, c: &PairFilterContext) -> Option<SolverFlags> {
        let excluded = c.rigid_body1.zip(c.rigid_body2).is_some_and(|pair| self.excludes(pair));
        (!excluded).then(SolverFlags::default)
    }
}

/// Puts the rigid body of loader body `r` (a floating base) at its centre of mass, keeping its
/// orientation: its colliders, visual meshes, mass properties and the anchors of the joints it
/// carries move by −c in its frame (c its centre of mass there), so the world is the same. Returns
/// the MJCF body frame in the moved rigid body's frame (a translation by −c), or `None` where the
/// centre of mass is the frame's origin already (within 1e-6 m: nothing moves). Rapier moves a free multibody
/// root's frame origin with the velocity it treats as the centre of mass's (the root's Jacobian
/// has no lever arm), so the two must coincide for a floating base to tumble correctly.
fn recentre_on_com(robot: &mut MjcfRobot, r: usize) -> Option<Pose> {
    let Some(RigidBodyAdditionalMassProps::MassProps(mp)) = robot.bodies[r].body.mass_properties().additional_local_mprops.as_deref().copied() else {
        return None;
    };
    // f32 rounding leaves ~1e-9 m where symmetry makes it 0 (the Ant's torso): nothing to move there
    if mp.local_com.length() < 1e-6 {
        return None;
    }
    let back = Pose::from_translation(-mp.local_com);
    let b = &mut robot.bodies[r];
    let pose = *b.body.position() * back.inverse();
    b.body.set_position(pose, false);
    b.body.set_additional_mass_properties(mp.transform_by(&back), false);
    for col in &mut b.colliders {
        let p = col.position_wrt_parent().copied().unwrap_or(*col.position());
        col.set_position(back * p);
    }
    for m in &mut b.visual_meshes {
        m.local_pose = back * m.local_pose;
    }
    for j in robot.joints.iter_mut().filter(|j| j.link1 == r) {
        j.joint.local_frame1 = back * j.joint.local_frame1;
    }
    Some(back)
}

/// The single free coordinate of a hinge or slide joint.
fn single_free_axis(j: &GenericJoint) -> Option<usize> {
    let free: Vec<usize> =
        (0..6).filter(|i| !j.locked_axes.contains(JointAxesMask::from_bits_truncate(1 << i))).collect();
    (free.len() == 1).then(|| free[0])
}

/// Fewer multibody links for the same dynamics, before anything is inserted into a world:
/// * a chain of joints inside one MJCF body (the loader links them through massless
///   intermediate bodies, one multibody link each) becomes one Rapier joint with several free
///   axes when they share their anchor, their axes are the body frame's +x/+y/+z, slides come
///   before the hinge and there is at most one hinge (the Swimmer's planar root, the Reacher's
///   target): MuJoCo composes such joints exactly as Rapier composes a joint's free axes
///   (translation, then rotation);
/// * a body welded to its parent (an MJCF body without joints) is merged into its parent: its
///   mass properties and colliders move there (not with fluid forces, which MuJoCo computes per
///   body).
/// The intermediate and welded bodies stay in the list (indices are kept) as fixed bodies with no
/// mass, no collider and no joint.
fn simplify_robot(robot: &mut MjcfRobot, weld: bool) -> Simplified {
    let old = std::mem::take(&mut robot.joints);
    let mut carrier: Vec<(usize, Pose)> = (0..robot.bodies.len()).map(|i| (i, Pose::IDENTITY)).collect();
    let mut joint_map = vec![None; old.len()];
    let mut joint_coord: Vec<Option<usize>> = old.iter().map(|j| single_free_axis(&j.joint)).collect();
    let mut i = 0;
    while i < old.len() {
        let mut end = i;
        while robot.bodies[old[end].link2].is_intermediate
            && end + 1 < old.len()
            && old[end + 1].link1 == old[end].link2
        {
            end += 1;
        }
        let chain = &old[i..=end];
        let first = &chain[0];
        // The parent may have been welded into another body.
        let (p, p_rel) = carrier[first.link1];
        let fixed = first.joint.locked_axes == JointAxesMask::LOCKED_FIXED_AXES && first.name.is_none();
        let additional = |b: &RigidBody| match b.mass_properties().additional_local_mprops.as_deref() {
            None => Some(MassProperties::default()),
            Some(RigidBodyAdditionalMassProps::MassProps(m)) => Some(*m),
            Some(RigidBodyAdditionalMassProps::Mass(_)) => None,
        };
        if chain.len() == 1 && fixed && weld && first.link1 != 0 {
            let c = first.link2;
            let rel = p_rel * first.joint.local_frame1 * first.joint.local_frame2.inverse();
            if let (Some(mp), Some(mc)) = (additional(&robot.bodies[p].body), additional(&robot.bodies[c].body)) {
                robot.bodies[p].body.set_additional_mass_properties(mp + mc.transform_by(&rel), false);
                robot.bodies[c].body.set_additional_mass_properties(MassProperties::default(), false);
                for mut col in std::mem::take(&mut robot.bodies[c].colliders) {
                    let pose = col.position_wrt_parent().copied().unwrap_or(*col.position());
                    col.set_position(rel * pose);
                    robot.bodies[p].colliders.push(col);
                }
                robot.bodies[c].body.set_body_type(RigidBodyType::Fixed, false);
                carrier[c] = (p, rel);
                i = end + 1;
                continue;
            }
        }
        let merged = (chain.len() > 1).then(|| merge_chain(chain)).flatten();
        match merged {
            Some((mut joint, coords)) => {
                for j in &chain[..chain.len() - 1] {
                    robot.bodies[j.link2].body.set_body_type(RigidBodyType::Fixed, false);
                }
                joint.link1 = p;
                joint.joint.local_frame1 = p_rel * joint.joint.local_frame1;
                for (k, c) in coords.into_iter().enumerate() {
                    joint_map[i + k] = Some(robot.joints.len());
                    joint_coord[i + k] = Some(c);
                }
                robot.joints.push(joint);
            }
            None => {
                for (k, j) in chain.iter().enumerate() {
                    let mut j = j.clone();
                    if k == 0 {
                        j.link1 = p;
                        j.joint.local_frame1 = p_rel * j.joint.local_frame1;
                    }
                    joint_map[i + k] = Some(robot.joints.len());
                    robot.joints.push(j);
                }
            }
        }
        i = end + 1;
    }
    // One multibody per tree hanging from the world, not one for all of them: Rapier joins every
    // tree rooted at the same (world) body into one multibody, whose mass matrix then couples
    // bodies that share nothing (the Reacher's arm and its target: 4×4 instead of 2×2 and 2×2),
    // and one island that can never sleep in parts. Each further tree gets its own fixed anchor at
    // the world's pose.
    let world_pose = *robot.bodies[0].body.position();
    let mut seen_world_tree = false;
    for k in 0..robot.joints.len() {
        if robot.joints[k].link1 != 0 {
            continue;
        }
        if !std::mem::replace(&mut seen_world_tree, true) {
            continue;
        }
        let idx = robot.bodies.len();
        robot.bodies.push(rapier3d_mjcf::MjcfBody {
            name: Some(format!("world__anchor_{idx}")),
            is_intermediate: true,
            mjcf_body_id: robot.bodies[0].mjcf_body_id,
            body: RigidBodyBuilder::fixed().pose(world_pose).build(),
            colliders: Vec::new(),
            gravcomp: 0.0,
            mass: 0.0,
            visual_meshes: Vec::new(),
        });
        robot.joints[k].link1 = idx;
    }
    // Indices into the old joint list: not used by the insertion we do.
    robot.actuators.clear();
    robot.joint_couplings.clear();
    Simplified { joint_map, joint_coord, carrier }
}

/// One joint for a chain of single-axis joints in one body (see [`simplify_robot`]), with the
/// coordinate of each original joint in it; `None` when the chain does not qualify.
fn merge_chain(chain: &[MjcfJoint]) -> Option<(MjcfJoint, Vec<usize>)> {
    const EPS: Real = 1e-6;
    // Where a slide sits does not change its motion (MuJoCo's Hopper puts its root slides at the
    // foot): the merged joint turns about the hinge's anchor, or sits at the first joint's anchor.
    let hinge = chain.iter().find(|j| single_free_axis(&j.joint).is_some_and(|a| a >= 3));
    let anchor = hinge.unwrap_or(&chain[0]).joint.local_frame2.translation;
    let mut coords = Vec::with_capacity(chain.len());
    for (k, j) in chain.iter().enumerate() {
        let a = single_free_axis(&j.joint)?;
        // Each joint after the first sits in the same body frame (an intermediate body at the
        // body's pose): its two frames have the same anchor.
        if k > 0 && (j.joint.local_frame1.translation - j.joint.local_frame2.translation).length() > EPS {
            return None;
        }
        if a >= 3 && (j.joint.local_frame2.translation - anchor).length() > EPS {
            return None;
        }
        let dir = j.joint.local_frame2.rotation * [Vector::X, Vector::Y, Vector::Z][a % 3];
        let c = (0..3).find(|c| (dir - [Vector::X, Vector::Y, Vector::Z][*c]).length() < EPS)?;
        coords.push(c + if a >= 3 { 3 } else { 0 });
    }
    let angular: Vec<usize> = coords.iter().copied().filter(|c| *c >= 3).collect();
    let mut sorted = coords.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let linear_first = coords.windows(2).all(|w| !(w[0] >= 3 && w[1] < 3));
    if angular.len() > 1 || sorted.len() != coords.len() || !linear_first {
        return None;
    }
    let mut locked = JointAxesMask::all();
    for c in &coords {
        locked.remove(JointAxesMask::from_bits_truncate(1 << c));
    }
    let first = &chain[0];
    let last = &chain[chain.len() - 1];
    // the anchor's pose in the parent: the first joint's anchor there, moved to the merged anchor
    let frame1 = first.joint.local_frame1
        * Pose::from_rotation(first.joint.local_frame2.rotation.inverse())
        * Pose::from_translation(anchor - first.joint.local_frame2.translation);
    let frame2 = Pose::from_translation(anchor);
    let mut joint = GenericJointBuilder::new(locked)
        .local_frame1(frame1)
        .local_frame2(frame2)
        .contacts_enabled(first.joint.contacts_enabled)
        .build();
    for (j, c) in chain.iter().zip(&coords) {
        let a = single_free_axis(&j.joint)?;
        if j.joint.limit_axes.contains(JointAxesMask::from_bits_truncate(1 << a)) {
            joint.limits[*c] = j.joint.limits[a];
            joint.limit_axes.insert(JointAxesMask::from_bits_truncate(1 << c));
        }
    }
    let name = chain.iter().filter_map(|j| j.name.clone()).collect::<Vec<_>>().join("+");
    Some((
        MjcfJoint {
            name: Some(name),
            link1: first.link1,
            link2: last.link2,
            joint,
            damping_per_dof: 0.0,
            armature_per_dof: 0.0,
            frictionloss_per_dof: 0.0,
            spring_stiffness_per_dof: 0.0,
            spring_ref: 0.0,
            springdamper: None,
        },
        coords,
    ))
}

/// Frees the linear axes a planar root leaves locked, where nothing pushes (across gravity), for
/// models with contacts. Works around a Rapier 0.36.1 solver defect: in a contact's friction
/// constraint along a direction no DoF can move (the y of a planar x–z model), rounding leaves a
/// Jacobian of about 1e-9 instead of 0 (the hinge axes are f32 rotations of +x), the effective mass
/// becomes about 1e14, and that direction's meaningless impulse takes the whole friction cone the two
/// tangent directions share: the real friction vanishes (a hinged link sliding at 2 m/s kept 1.99 m/s
/// where Coulomb friction with μ = 0.4 stops it in 0.5 s; `examples/friction_probe.rs`). With the
/// direction free, its effective mass is the body's and friction holds it still, as the locked axis
/// would: no force acts along it (gravity, motors and joint forces all lie in the plane), so the
/// motion in the plane is unchanged. The freed axis is not a model DoF (not in qpos or qvel).
fn hidden_linear_freedom(j: &mut MjcfJoint, pose1: Pose, g: Vector) {
    let locked = j.joint.locked_axes;
    let lin = [JointAxesMask::LIN_X, JointAxesMask::LIN_Y, JointAxesMask::LIN_Z];
    if lin.iter().all(|a| locked.contains(*a)) {
        return; // a root fixed in place (a hinge on the world) stays so
    }
    let frame = pose1 * j.joint.local_frame1;
    for (i, a) in lin.iter().enumerate() {
        let dir = frame.rotation * [Vector::X, Vector::Y, Vector::Z][i];
        if locked.contains(*a) && dir.dot(g).abs() <= 1e-6 * g.length().max(1.0) {
            j.joint.locked_axes.remove(*a);
        }
    }
}

/// MuJoCo's contact rules on the colliders the loader made (each carrying its geom's contype as
/// memberships and conaffinity as filter): two geoms touch when `contype₁ & conaffinity₂` or
/// `contype₂ & conaffinity₁` is non-zero (Rapier's `Or` test); friction combines by the larger
/// coefficient (MuJoCo's rule for geoms of equal priority); contact softness from `contact` (see
/// [`RapierSettings::contact`]).
fn mujoco_contacts(world: &mut PhysicsWorld, contact: Option<[f64; 2]>) {
    for (_, c) in world.colliders.iter_mut() {
        let g = c.collision_groups();
        c.set_collision_groups(InteractionGroups::new(g.memberships, g.filter, InteractionTestMode::Or));
        c.set_friction_combine_rule(CoefficientCombineRule::Max);
    }
    if let Some([f, z]) = contact {
        let soft = SpringCoefficients::new(f as Real, z as Real);
        world.integration_parameters.contact_softness = soft;
        world.integration_parameters.static_contact_softness = soft;
    }
}

/// Rapier settings of a world (the env options `timestep`, `substeps`, ...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RapierSettings {
    pub timestep: f64,
    pub substeps: usize,
    pub solver_iterations: usize,
    pub limit_natural_frequency: f64,
    pub limit_damping_ratio: f64,
    /// Joint limits as a projection of ours after each Rapier step instead of Rapier's limit
    /// constraints: a DoF past its range is put back on it and its velocity into the limit is
    /// removed by the generalised impulse along that DoF (through the inverse mass matrix, so the
    /// rest of the chain reacts as to a hard, inelastic stop). Keeps the limits hard with one
    /// solver iteration, where Rapier's own constraints give.
    pub limit_projection: bool,
    /// Softness of contacts, `[natural frequency (Hz), damping ratio]`, for contacts between two
    /// moving bodies and with the ground alike; `None`: Rapier's defaults (30 Hz and 60 Hz against
    /// fixed bodies, ratio 10). Models without contacts ignore it.
    pub contact: Option<[f64; 2]>,
}

#[derive(Clone, Copy, Debug)]
struct Dof {
    handle: MultibodyJointHandle,
    /// Index in the multibody's generalised velocity.
    index: usize,
    /// Index in the joint's spatial coordinates (0..3 linear, 3..6 angular).
    coord: usize,
    child: RigidBodyHandle,
    /// `None` when the parent is fixed.
    parent: Option<RigidBodyHandle>,
    /// The joint frame on the child (its x axis is the joint axis).
    frame2: Pose,
    /// MJCF `ref` (qpos = Rapier coordinate + reference).
    reference: f64,
    /// The DoF's link in its multibody, and the multibody's root body (which identifies it).
    link: usize,
    root: RigidBodyHandle,
}

#[derive(Clone, Copy, Debug)]
struct FluidBody {
    handle: RigidBodyHandle,
    /// A joint of the body's multibody, and the body's link in it.
    multibody: MultibodyJointHandle,
    link: usize,
    mass: f64,
    inertia: [f64; 3],
}

/// MuJoCo's integrators taken in MuJoCo's coordinates without Rapier's step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnStep {
    Rk4,
    Euler,
}

/// A model in a Rapier world: the state lives in `world` (capture it with
/// [`crate::rapier_world::WorldState`]); handles stay valid across captures and restores.
pub struct MjcfWorld {
    pub world: PhysicsWorld,
    dofs: Vec<Dof>,
    /// Rigid body that carries each [`MjcfModel::bodies`] entry (a welded body rides on its
    /// parent's), and the entry's frame in it.
    pub bodies: Vec<RigidBodyHandle>,
    body_offsets: Vec<Pose>,
    fluid: Vec<FluidBody>,
    density: f64,
    viscosity: f64,
    /// The world as [`MjcfWorld::build`] left it, restored by [`MjcfWorld::reset_state`].
    rest: WorldState,
    /// Trees nothing can set in motion (see `build`): their DoFs and dynamic links.
    still_trees: Vec<(Vec<usize>, Vec<RigidBodyHandle>)>,
    /// Per DoF, its range when [`RapierSettings::limit_projection`] enforces it.
    projected: Vec<Option<[f64; 2]>>,
    /// The DoFs of `projected`, by multibody (projected jointly).
    limit_groups: Vec<Vec<usize>>,
    /// Joint springs: (DoF, stiffness, springref in qpos).
    springs: Vec<(usize, f64, f64)>,
    /// The floating base, if the model has one.
    free: Option<FreeBase>,
    /// Body pairs Rapier would let touch that MuJoCo does not.
    parent_child: ParentChildFilter,
    /// Contacts push from this distance on (MuJoCo's geom `margin`; see [`MjcfWorld::set_contact_margin`]).
    margin: f64,
    /// MuJoCo's soft joint limits in place of Rapier's (see [`MjcfWorld::set_mujoco_limits`]).
    soft_limits: Option<SoftLimits>,
    /// MuJoCo's soft contacts with the floor in place of Rapier's (see [`MjcfWorld::set_mujoco_contacts`]).
    soft_contacts: Option<soft_contact::SoftContacts>,
    /// The soft contacts' forces of the last Rapier step (for [`MjcfWorld::contact_wrenches`]).
    soft_forces: Vec<soft_contact::SoftForce>,
    /// The centres of mass of the trees (by root) at the state `soft_forces` were solved at, where that is not the
    /// state now (the RK4 step's last stage); empty: the state now.
    soft_coms: Vec<(RigidBodyHandle, Vector)>,
    /// Floor contacts of the last constraint problem solved (its contact rows).
    soft_rows: usize,
    /// After an RK4 step, the floor contacts of its last stage (MuJoCo's `ncon` after an RK4 `mj_step`).
    rk4_ncon: Option<usize>,
    /// Each Rapier step takes MuJoCo's Euler step (see [`MjcfWorld::set_euler_integrator`]).
    euler: bool,
    /// MuJoCo's step that replaces Rapier's, if one does: its RK4 step ([`MjcfWorld::set_rk4_integrator`]) or its
    /// Euler step taken whole ([`MjcfWorld::set_mujoco_euler`]).
    own_step: Option<OwnStep>,
    /// Per multibody with joint damping (its root body), the LU factorisation of `M + h·D` for the implicit damping
    /// of [`MjcfWorld::set_mujoco_euler`]'s step, left by [`MjcfWorld::factor_mass_matrices`].
    damped_lus: Vec<(RigidBodyHandle, rapier3d::na::LU<Real, rapier3d::na::Dyn, rapier3d::na::Dyn>)>,
    /// Steps of the RK4 integrator taken by Rapier instead, because two body geoms touched.
    rk4_fallbacks: u64,
    /// Per multibody (its root body), the LU factorisation of its joint-space mass matrix that
    /// [`MjcfWorld::factor_mass_matrices`] left (see [`MjcfWorld::mass_lu`]).
    mass_lus: Vec<(RigidBodyHandle, rapier3d::na::LU<Real, rapier3d::na::Dyn, rapier3d::na::Dyn>)>,
    /// The soft limits' generalised forces of the last RK4 stage taken (one per model DoF; see
    /// [`MjcfWorld::limit_forces`]).
    rk4_limit_forces: Vec<f64>,
    /// Whether two geoms of the model's bodies can touch at all (their collision groups meet, and neither MuJoCo's
    /// parent–child rule nor their multibody leaves them out): only then does the RK4 step look for it.
    body_pairs: bool,
    /// Whether some joint has a range (Rapier enforces it inside its own step unless MuJoCo's limits are on).
    limited: bool,
}

/// MuJoCo's com-based quantities of the model's bodies ([`MjcfWorld::com_quantities`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ComQuantities {
    /// Centre of mass of each body, world frame (MuJoCo's `xipos`).
    pub xipos: Vec<[f64; 3]>,
    /// MuJoCo's `cinert` of each body.
    pub cinert: Vec<[f64; 10]>,
    /// MuJoCo's `cvel` of each body.
    pub cvel: Vec<[f64; 6]>,
}

/// MuJoCo's soft joint limits (`solreflimit`, `solimplimit`), per DoF range.
#[derive(Clone, Debug)]
struct SoftLimits {
    ranges: Vec<Option<[f64; 2]>>,
    /// Per DoF, the joint's `margin` (the limit acts from this distance to the range on).
    margins: Vec<f64>,
    /// Stiffness and damping of the reference acceleration: `aref = −b·v − k·imp·pos`.
    k: f64,
    b: f64,
    solimp: [f64; 5],
    /// Per DoF, M⁻¹'s diagonal entry at the rest pose (MuJoCo's `dof_invweight0`), which scales the
    /// regulariser `R = (1 − imp)/imp · dof_invweight0` of its limit row.
    invweight: Vec<f64>,
}

/// MuJoCo's constraint impedance at violation `x ≥ 0` (`solimp` = dmin, dmax, width, midpoint, power).
fn impedance(x: f64, [dmin, dmax, width, mid, power]: [f64; 5]) -> f64 {
    if x >= width || width <= 0.0 {
        return dmax;
    }
    let (x, mid, power) = (x / width, mid.clamp(1e-4, 1.0 - 1e-4), power.max(1.0));
    let y = if x <= mid { x.powf(power) / mid.powf(power - 1.0) } else { 1.0 - (1.0 - x).powf(power) / (1.0 - mid).powf(power - 1.0) };
    dmin + y * (dmax - dmin)
}

/// A floating base: the root rigid body of its multibody (whose first six generalised velocities
/// are the base's: centre-of-mass velocity and angular velocity, both in the world frame), or a
/// free rigid body of its own when nothing is jointed to it. The rigid body sits at the base's
/// centre of mass ([`recentre_on_com`]); `offset` is the MJCF body frame in it (a translation).
#[derive(Clone, Copy, Debug)]
struct FreeBase {
    body: RigidBodyHandle,
    multibody: Option<MultibodyJointHandle>,
    offset: Pose,
}

impl FreeBase {
    /// The MJCF body frame's origin relative to the rigid body's, in the world frame, at orientation `r`.
    fn arm(&self, r: Rotation) -> Vector {
        r * self.offset.translation
    }
}

impl MjcfWorld {
    /// The model at qpos = 0, qvel = 0.
    pub fn build(model: &MjcfModel, s: &RapierSettings) -> Self {
        let mut world = PhysicsWorld::new();
        world.gravity = Vector::new(model.gravity[0] as Real, model.gravity[1] as Real, model.gravity[2] as Real);
        configure_integration(&mut world.integration_parameters, s.timestep, s.substeps, s.solver_iterations);
        let mut robot = (*model.robot).clone();
        let softness = SpringCoefficients::new(s.limit_natural_frequency as Real, s.limit_damping_ratio as Real);
        let g = Vector::new(model.gravity[0] as Real, model.gravity[1] as Real, model.gravity[2] as Real);
        for j in &mut robot.joints {
            let parent = &robot.bodies[j.link1].body;
            if s.contact.is_some() && parent.is_fixed() {
                hidden_linear_freedom(j, *parent.position(), g);
            }
            // MuJoCo filters contacts between a parent and its child body, except when the parent is
            // the world: a body jointed to the world still lands on the floor.
            if j.link1 == 0 {
                j.joint.contacts_enabled = true;
            }
            j.joint.softness = softness;
            // Armature and damping are written per DoF below (MuJoCo's joint-space values).
            j.armature_per_dof = 0.0;
            j.damping_per_dof = 0.0;
        }
        let frames: Vec<Pose> = robot.joints.iter().map(|j| j.joint.local_frame2).collect();
        let chained = ParentChildFilter::chained(&robot);
        let handles = robot.insert_using_multibody_joints(
            &mut world.bodies,
            &mut world.colliders,
            &mut world.multibody_joints,
            &mut world.impulse_joints,
            // springs are MuJoCo's explicit passive force, applied in `step` (the loader's are implicit)
            MjcfMultibodyOptions::SKIP_JOINT_MOTORS | MjcfMultibodyOptions::SKIP_JOINT_SPRINGS,
        );
        mujoco_contacts(&mut world, s.contact);
        let parent_child = ParentChildFilter::new(&chained, &handles.bodies, &mut world);
        for b in handles.bodies.iter().flatten() {
            if let Some(rb) = world.bodies.get_mut(b.body) {
                rb.enable_ccd(false);
                rb.set_enabled(true);
            }
        }
        // A zero-length step settles every multibody's root and DOF count.
        let dt = world.integration_parameters.dt;
        world.integration_parameters.dt = 0.0;
        world.step_with_events(&parent_child, &());
        world.integration_parameters.dt = dt;

        // Per-DoF damping and armature: MuJoCo's values everywhere (zero where not given).
        for jh in handles.joints.iter().filter_map(|j| j.joint) {
            let (mb, _) = world.multibody_joints.get_mut(jh).expect("joint in a multibody");
            mb.damping_mut().fill(0.0);
            mb.armature_mut().fill(0.0);
        }
        let mut dofs = Vec::with_capacity(model.joints.len());
        for spec in &model.joints {
            let jh = handles.joints[spec.robot_joint].joint.expect("hinge/slide joints are in a multibody");
            let (mb, link_id) = world.multibody_joints.get_mut(jh).expect("joint in a multibody");
            let link = mb.link(link_id).expect("link");
            let coord = spec.coord;
            // Rapier orders a joint's DoFs by coordinate (linear x, y, z, then angular).
            let locked = link.joint().data.locked_axes;
            let rank = (0..coord).filter(|i| !locked.contains(JointAxesMask::from_bits_truncate(1 << i))).count();
            let index = link.assembly_id() + rank;
            let root = mb.root().rigid_body_handle();
            mb.damping_mut()[index] = spec.damping as Real;
            mb.armature_mut()[index] = spec.armature as Real;
            let child = handles.joints[spec.robot_joint].link2;
            let parent = handles.joints[spec.robot_joint].link1;
            let parent = world.bodies.get(parent).filter(|rb| rb.is_dynamic()).map(|_| parent);
            dofs.push(Dof {
                handle: jh,
                index,
                coord,
                child,
                parent,
                frame2: frames[spec.robot_joint],
                reference: spec.reference,
                link: link_id,
                root,
            });
        }
        // MuJoCo does not put bodies to sleep; neither do we, except a tree that nothing can move
        // once at rest (slides only, none actuated, gravity across all of them, no collider, no
        // fluid: the Reacher's target). `set_state` lets Rapier put such a tree to sleep when it
        // starts at rest (it then costs nothing per step and stays exactly where it is, as in
        // MuJoCo), and keeps it awake when it starts moving.
        let mut still_trees = Vec::new();
        let g = world.gravity;
        for tree in trees(&dofs) {
            let (mb, _) = world.multibody_joints.get(dofs[tree[0]].handle).expect("multibody");
            let links: Vec<RigidBodyHandle> =
                mb.links().map(|l| l.rigid_body_handle()).filter(|h| world.bodies[*h].is_dynamic()).collect();
            for h in &links {
                *world.bodies[*h].activation_mut() = RigidBodyActivation::cannot_sleep();
            }
            let still = model.density == 0.0
                && model.viscosity == 0.0
                && links.iter().all(|h| world.bodies[*h].colliders().is_empty())
                && tree.iter().all(|k| {
                    let d = &dofs[*k];
                    let axis = (*world.bodies[d.child].position() * d.frame2).rotation
                        * [Vector::X, Vector::Y, Vector::Z][d.coord % 3];
                    d.coord < 3
                        && axis.dot(g).abs() <= 1e-6 * g.length().max(1.0)
                        && !model.actuators.iter().any(|a| a.joint == *k)
                });
            if still {
                still_trees.push((tree, links));
            }
        }
        let bodies: Vec<RigidBodyHandle> = model
            .bodies
            .iter()
            .map(|b| handles.bodies[b.carrier].as_ref().map(|h| h.body).unwrap_or_else(RigidBodyHandle::invalid))
            .collect();
        let body_offsets: Vec<Pose> = model.bodies.iter().map(|b| b.offset).collect();
        let mut carriers: Vec<RigidBodyHandle> = Vec::with_capacity(bodies.len());
        for h in &bodies {
            if !carriers.contains(h) {
                carriers.push(*h);
            }
        }
        let fluid = if model.density > 0.0 || model.viscosity > 0.0 {
            carriers
                .iter()
                .filter_map(|h| world.bodies.get(*h).map(|rb| (*h, rb)))
                .filter(|(_, rb)| rb.is_dynamic())
                .filter_map(|(h, rb)| {
                    let mp = rb.mass_properties().local_mprops;
                    let mass = mp.mass() as f64;
                    let i = mp.principal_inertia();
                    let link = world.multibody_joints.rigid_body_link(h)?.id;
                    let multibody = dofs
                        .iter()
                        .find(|d| {
                            let (mb, _) = world.multibody_joints.get(d.handle).expect("multibody");
                            mb.links().any(|l| l.rigid_body_handle() == h)
                        })?
                        .handle;
                    (mass > 0.0).then_some(FluidBody {
                        handle: h,
                        multibody,
                        link,
                        mass,
                        inertia: [i.x as f64, i.y as f64, i.z as f64],
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let projected: Vec<Option<[f64; 2]>> =
            model.joints.iter().map(|j| if s.limit_projection { j.range } else { None }).collect();
        for (d, range) in dofs.iter().zip(&projected) {
            if range.is_some() {
                set_limit_axis(&mut world, d, false);
            }
        }
        let limit_groups: Vec<Vec<usize>> = trees(&dofs)
            .into_iter()
            .map(|t| t.into_iter().filter(|k| projected[*k].is_some()).collect::<Vec<usize>>())
            .filter(|t| !t.is_empty())
            .collect();
        let rest = WorldState::capture(&world);
        let springs = model
            .joints
            .iter()
            .enumerate()
            .filter(|(_, j)| j.stiffness != 0.0)
            .map(|(k, j)| (k, j.stiffness, j.springref))
            .collect();
        let free = model.free_root.map(|b| {
            let body = bodies[b];
            let multibody = dofs.iter().find(|d| d.root == body).map(|d| d.handle);
            FreeBase { body, multibody, offset: body_offsets[b] }
        });
        MjcfWorld {
            world,
            dofs,
            bodies,
            body_offsets,
            fluid,
            density: model.density,
            viscosity: model.viscosity,
            rest,
            still_trees,
            projected,
            limit_groups,
            springs,
            free,
            parent_child,
            margin: 0.0,
            soft_limits: None,
            soft_contacts: None,
            soft_forces: Vec::new(),
            soft_coms: Vec::new(),
            soft_rows: 0,
            mass_lus: Vec::new(),
            rk4_limit_forces: Vec::new(),
            rk4_ncon: None,
            euler: false,
            own_step: None,
            damped_lus: Vec::new(),
            rk4_fallbacks: 0,
            body_pairs: true,
            limited: model.joints.iter().any(|j| j.range.is_some()),
        }
    }

    /// Makes every Rapier step MuJoCo's `Euler` integrator's (`mj_Euler`, MuJoCo's default): `v' = v + h·a`,
    /// `q' = q + h·v'` with `(M + h·D) a = τ − c(q, v) − D·v` (springs, actuators, gravity, the soft limits' and
    /// contacts' forces in `τ`; the Coriolis, centrifugal and gyroscopic forces `c` explicit, at the step's start;
    /// the joint damping `D` implicit). Rapier's multibody treats `c` semi-implicitly (it adds `h·∂c/∂v` to the
    /// matrix, falling back to the plain one when that would add energy), which at the HalfCheetah's speeds moves
    /// a step's acceleration by 2–7 % from MuJoCo's. With this on, each step's velocities and positions are
    /// corrected after Rapier's step by what MuJoCo's acceleration differs from the one Rapier used
    /// ([`Multibody::generalized_acceleration`]): `Δv = h·Δa`, `Δq = h²·Δa`; impulses of Rapier's own
    /// constraints (its limits and contacts, where they are in use) are kept. Needs one solver iteration
    /// (one Rapier substep, whose free acceleration this corrects) and a model without MuJoCo's fluid forces
    /// (which it does not add up); [`RapierSettings::limit_projection`] still projects after it.
    pub fn set_euler_integrator(&mut self, on: bool) -> Result<(), String> {
        if on && self.world.integration_parameters.num_solver_iterations != 1 {
            return Err(format!(
                "MuJoCo's Euler step needs solver_iterations = 1 (one Rapier substep per step), got {}",
                self.world.integration_parameters.num_solver_iterations
            ));
        }
        if on && !self.fluid.is_empty() {
            return Err("MuJoCo's Euler step is not made for a model with fluid forces (density or viscosity)".into());
        }
        self.euler = on;
        Ok(())
    }

    /// Makes every step MuJoCo's `RK4` integrator's (`mj_RungeKutta` with N = 4, the integrator of Gymnasium's
    /// Hopper and Walker2d): from the state `X₀ = (q₀, v₀)`, the accelerations `aᵢ` of MuJoCo's forward dynamics at
    /// `X₁ = X₀ + h/2·(v₀, a₀)`, `X₂ = X₀ + h/2·(v₁, a₁)`, `X₃ = X₀ + h·(v₂, a₂)`, then
    /// `X' = X₀ + h/6·((v₀, a₀) + 2(v₁, a₁) + 2(v₂, a₂) + (v₃, a₃))`. Each `aᵢ = M⁻¹(τ + gravity − c(q, v) − D·v +
    /// constraint forces)`, with the soft limits' and floor contacts' forces of MuJoCo's constraint problem solved
    /// at that stage's state, the joint damping explicit (as RK4 has it), and `M` the joint-space mass matrix with
    /// armature. Rapier's own step is not taken, so everything that acts must be ours: it needs MuJoCo's contacts
    /// and limits (`set_mujoco_contacts` where a body geom can touch the floor, `set_mujoco_limits` where a joint has a
    /// range) and no projected limits; MuJoCo's inertia-box fluid forces (the Swimmer's) are recomputed at each stage,
    /// as MuJoCo's passive forces are. The state is MuJoCo's (qpos, qvel): a floating base's position and
    /// quaternion advance as `mj_integratePos` advances them (the quaternion turned by its body-frame angular
    /// velocity), and its accelerations are MuJoCo's (of the body frame's origin; angular in the body frame), not
    /// Rapier's centre-of-mass ones, so that the four stages combine as MuJoCo's do. Contacts between two body
    /// geoms are Rapier's: a step that starts with two body geoms touching is Rapier's step instead
    /// ([`MjcfWorld::rk4_fallbacks`] counts them). The contact forces a step leaves ([`MjcfWorld::contact_wrenches`])
    /// are those of its last stage, at that stage's state, as MuJoCo's `cfrc_ext` after an RK4 `mj_step` is.
    pub fn set_rk4_integrator(&mut self, on: bool) -> Result<(), String> {
        if on {
            if let Some(why) = self.own_step_refusal() {
                return Err(format!("MuJoCo's RK4 step: {why}"));
            }
        }
        self.switch_own_step(OwnStep::Rk4, on);
        self.body_pairs = self.body_pairs_can_touch();
        Ok(())
    }

    /// Makes every step MuJoCo's `Euler` integrator's (`mj_Euler`), taken as [`MjcfWorld::set_rk4_integrator`] takes
    /// RK4, without Rapier's step: MuJoCo's acceleration `a` at the state now (the same forward dynamics as an RK4
    /// stage: soft limits and floor contacts solved with `M`, Coriolis terms and joint damping explicit), then,
    /// where a joint has damping, `a' = (M + h·D)⁻¹ M a` (MuJoCo's implicit damping, `mjDSBL_EULERDAMP` unset),
    /// `v' = v + h·a'` and `q' = mj_integratePos(q, v', h)`. What it needs and refuses is RK4's; it replaces
    /// [`MjcfWorld::set_euler_integrator`]'s correction of Rapier's step (which must be off). Off again with
    /// `set_mujoco_euler(false)` (Rapier's step) or [`MjcfWorld::set_rk4_integrator`].
    pub fn set_mujoco_euler(&mut self, on: bool) -> Result<(), String> {
        if on {
            if let Some(why) = self.own_step_refusal() {
                return Err(format!("MuJoCo's Euler step taken whole: {why}"));
            }
        }
        self.switch_own_step(OwnStep::Euler, on);
        self.body_pairs = self.body_pairs_can_touch();
        Ok(())
    }

    /// Makes `kind` the step that replaces Rapier's (`on`), or, where it is that step, gives Rapier's step back; off
    /// leaves the other kind as it is.
    fn switch_own_step(&mut self, kind: OwnStep, on: bool) {
        if on {
            self.own_step = Some(kind);
        } else if self.own_step == Some(kind) {
            self.own_step = None;
        }
    }

    /// Why this world cannot take MuJoCo's step without Rapier's ([`MjcfWorld::set_rk4_integrator`],
    /// [`MjcfWorld::set_mujoco_euler`]), if it cannot.
    fn own_step_refusal(&self) -> Option<&'static str> {
        if self.euler {
            Some("it replaces Rapier's step, which MuJoCo's Euler correction (euler_integrator) corrects: the two exclude each other")
        } else if self.free.is_some_and(|f| f.multibody.is_none()) {
            Some("a floating base with nothing jointed to it is not supported")
        } else if self.soft_contacts.is_none() && self.can_touch_world() {
            Some("it needs MuJoCo's floor contacts (Rapier's act only inside Rapier's step)")
        } else if self.limited && self.soft_limits.is_none() {
            Some("it needs MuJoCo's joint limits (Rapier's act only inside Rapier's step)")
        } else if !self.limit_groups.is_empty() {
            Some("projected limits are not supported")
        } else {
            None
        }
    }

    /// [`MjcfWorld::set_rk4_integrator`] for the env option `rk4_integrator` of environment `env`: what the model or the
    /// other options do not allow is that option's error, naming `fix` (the settings it needs) as the way out.
    pub fn use_rk4_integrator(&mut self, on: bool, env: &str, fix: &str) -> Result<(), crate::error::EnvError> {
        self.set_rk4_integrator(on).map_err(|msg| crate::error::EnvError::BadOption {
            env: env.into(),
            key: "rk4_integrator".into(),
            msg: format!("{msg}; set {fix}, or rk4_integrator=false"),
        })
    }

    /// Whether some collider of the model's bodies can touch a geom of the world (the floor).
    fn can_touch_world(&self) -> bool {
        let (model, world): (Vec<&Collider>, Vec<&Collider>) =
            self.world.colliders.iter().map(|(_, c)| c).partition(|c| c.user_data != 0);
        model.iter().any(|a| world.iter().any(|b| a.collision_groups().test(b.collision_groups())))
    }

    /// Whether some pair of the model's body colliders can touch (see `body_pairs`).
    fn body_pairs_can_touch(&self) -> bool {
        let model: Vec<&Collider> = self.world.colliders.iter().map(|(_, c)| c).filter(|c| c.user_data != 0).collect();
        model.iter().enumerate().any(|(i, a)| {
            model[i + 1..].iter().any(|b| {
                let pair = a.parent().zip(b.parent());
                a.collision_groups().test(b.collision_groups())
                    && pair.is_some_and(|(x, y)| x != y && !self.parent_child.excludes((x, y)) && !self.joined((x, y)))
            })
        })
    }

    /// MuJoCo's `qfrc_constraint` of the joint limits after the last step of [`MjcfWorld::set_rk4_integrator`]'s
    /// integrator: the soft limits' generalised forces of its last stage (as MuJoCo's `qfrc_constraint` after an RK4
    /// `mj_step` holds its last stage's), one per model DoF (the floating base's excluded). `None` before the first
    /// RK4 step, or when the last step was Rapier's.
    pub fn limit_forces(&self) -> Option<&[f64]> {
        (self.rk4_ncon.is_some() && !self.rk4_limit_forces.is_empty()).then_some(&self.rk4_limit_forces[..])
    }

    /// Steps of [`MjcfWorld::set_rk4_integrator`]'s integrator that Rapier took instead because two body geoms
    /// touched, since the world was built.
    pub fn rk4_fallbacks(&self) -> u64 {
        self.rk4_fallbacks
    }

    /// Whether two geoms of the model's bodies touch now (within the contact margin), by Rapier's collision
    /// detection at the current poses.
    fn bodies_touch(&mut self) -> bool {
        self.world.detect_collisions(&self.parent_child, &());
        let margin = self.margin;
        let model = |h: ColliderHandle| self.world.colliders.get(h).is_some_and(|c| c.user_data != 0);
        self.world.contact_pairs().any(|p| {
            model(p.collider1)
                && model(p.collider2)
                && !self.left_out(p)
                && matches!(&p.contacts, PairContacts::Rigid(r) if r.manifolds.iter().any(|m| m.points.iter().any(|pt| pt.dist as f64 <= 0.0f64.max(margin - 1e-9))))
        })
    }

    /// Whether Rapier's step leaves the pair out: MuJoCo's parent–child rule ([`ParentChildFilter`]) or the bodies'
    /// multibody ([`MjcfWorld::joined`]). Collision detection alone, as the RK4 step runs it, keeps such pairs.
    fn left_out(&self, p: &ContactPair) -> bool {
        let body = |h: ColliderHandle| self.world.colliders.get(h).and_then(|c| c.parent());
        body(p.collider1).zip(body(p.collider2)).is_some_and(|pair| self.parent_child.excludes(pair) || self.joined(pair))
    }

    /// Whether Rapier leaves out contacts between the two bodies because of their multibody: self-contacts off, or
    /// a joint between them with contacts off (its step does; collision detection alone, which knows no joints,
    /// does not).
    fn joined(&self, (a, b): (RigidBodyHandle, RigidBodyHandle)) -> bool {
        let mj = &self.world.multibody_joints;
        let (Some(la), Some(lb)) = (mj.rigid_body_link(a), mj.rigid_body_link(b)) else { return false };
        if la.multibody != lb.multibody {
            return false;
        }
        mj.get_multibody(la.multibody).is_some_and(|mb| !mb.self_contacts_enabled())
            || mj.joint_between(a, b).is_some_and(|(_, _, link)| !link.joint.data.contacts_enabled)
    }

    /// Puts the model at MuJoCo's `qpos`, `qvel` from any state, and the links where they go.
    fn put_state(&mut self, qpos: &[f64], qvel: &[f64]) {
        let (q, v) = match self.free {
            Some(f) => {
                self.put_free(f, qpos, qvel);
                (&qpos[7..], &qvel[6..])
            }
            None => (qpos, qvel),
        };
        let free_body = self.free.map(|f| f.body);
        for first in self.first_dofs() {
            // one displacement per multibody (each joint coordinate moves by itself: the same as one per DoF)
            let mine: Vec<(usize, Dof)> = self.dofs.iter().copied().enumerate().filter(|(_, d)| d.root == first.root).collect();
            let disp: Vec<(usize, Real)> = mine.iter().map(|&(k, d)| (d.index, (q[k] - self.q(k)) as Real)).collect();
            let (mb, _) = self.world.multibody_joints.get_mut(first.handle).expect("multibody");
            let mut all = vec![0.0 as Real; mb.ndofs()];
            for (i, x) in disp {
                all[i] = x;
            }
            mb.apply_displacements(&all);
            let mut gv = mb.generalized_velocity_mut();
            for &(k, d) in &mine {
                gv[d.index] = v[k] as Real;
            }
            mb.forward_kinematics(&self.world.bodies, free_body == Some(first.root));
            mb.update_rigid_bodies(&mut self.world.bodies, true);
        }
    }

    /// Sets the floating base `f`'s pose and velocity from MuJoCo's `qpos[..7]`, `qvel[..6]` (the quaternion
    /// normalised), on its rigid body and its multibody's first six velocities; forward kinematics is the caller's.
    fn put_free(&mut self, f: FreeBase, qpos: &[f64], qvel: &[f64]) {
        let r = |i: usize| qpos[i] as Real;
        let rot = Rotation::from_xyzw(r(4), r(5), r(6), r(3)).normalize();
        let rb = &mut self.world.bodies[f.body];
        rb.set_position(Pose::from_parts(Vector::new(r(0), r(1), r(2)), rot) * f.offset.inverse(), true);
        let v = |i: usize| qvel[i] as Real;
        let ang = rot * Vector::new(v(3), v(4), v(5));
        let lin = Vector::new(v(0), v(1), v(2)) - ang.cross(f.arm(rot));
        match f.multibody {
            Some(h) => {
                let (mb, _) = self.world.multibody_joints.get_mut(h).expect("multibody");
                let mut gv = mb.generalized_velocity_mut();
                for i in 0..3 {
                    gv[i] = lin[i];
                    gv[3 + i] = ang[i];
                }
            }
            None => {
                rb.set_linvel(lin, true);
                rb.set_angvel(ang, true);
            }
        }
    }

    /// MuJoCo's `mj_integratePos`: `qpos` advanced by velocity `qvel` over `h` (a floating base's position by its
    /// linear velocity, its quaternion, normalised first, turned by the body-frame angular velocity `ω·h`).
    fn integrate_pos(&self, qpos: &[f64], qvel: &[f64], h: f64) -> Vec<f64> {
        let mut out = qpos.to_vec();
        let (pq, pv) = if self.free.is_some() {
            for i in 0..3 {
                out[i] += h * qvel[i];
            }
            let n = qpos[3..7].iter().map(|x| x * x).sum::<f64>().sqrt();
            let [w, x, y, z] = [3, 4, 5, 6].map(|i| qpos[i] / n);
            let [a, b, c] = [qvel[3], qvel[4], qvel[5]];
            let speed = (a * a + b * b + c * c).sqrt();
            if speed > 0.0 {
                let (half, axis) = (0.5 * h * speed, [a / speed, b / speed, c / speed]);
                let (s, cw) = (half.sin(), half.cos());
                let [rx, ry, rz] = axis.map(|e| e * s);
                // quat ⊗ (cos, sin·axis)
                out[3] = w * cw - x * rx - y * ry - z * rz;
                out[4] = w * rx + x * cw + y * rz - z * ry;
                out[5] = w * ry - x * rz + y * cw + z * rx;
                out[6] = w * rz + x * ry - y * rx + z * cw;
            } else {
                out[3..7].copy_from_slice(&[w, x, y, z]);
            }
            (7, 6)
        } else {
            (0, 0)
        };
        for k in 0..self.dofs.len() {
            out[pq + k] += h * qvel[pv + k];
        }
        out
    }

    /// MuJoCo's `qacc` at the state now under actuator forces `tau` (one per model DoF), with the joint damping
    /// explicit: `M⁻¹(τ + gravity − c − D·v + the constraints' forces)`, in MuJoCo's qvel order (a floating base's
    /// acceleration that of its body frame's origin, world frame, and its angular acceleration in the body frame).
    /// The soft contacts' forces of this state are left in `soft_forces`. With `implicit_damping` MuJoCo's Euler
    /// acceleration `(M + h·D)⁻¹ M a` instead (see [`MjcfWorld::set_mujoco_euler`]).
    fn mujoco_acceleration(&mut self, tau: &[f64], kinematics: bool, implicit_damping: bool) -> Vec<f64> {
        self.factor_mass_matrices(kinematics);
        let applied = self.with_springs(tau);
        let tau = self.constraints_factored(applied.clone());
        self.rk4_limit_forces = tau.iter().zip(&applied).map(|(t, a)| t - a).collect();
        let base = if self.free.is_some() { 6 } else { 0 };
        let mut qacc = vec![0.0; base + self.dofs.len()];
        let fluid = if self.fluid.is_empty() { Vec::new() } else { self.fluid_wrenches() };
        for d in self.first_dofs() {
            let (mb, _) = self.world.multibody_joints.get(d.handle).expect("multibody");
            let mut f = self.applied_forces(mb, &tau);
            self.add_soft_forces(mb, &mut f).expect("the floor contacts are on the model's multibodies");
            self.add_fluid_forces(mb, &fluid, &mut f);
            soft_contact::subtract_damping(mb, &mut f);
            let root = mb.root().rigid_body_handle();
            let damped = implicit_damping.then(|| self.damped_lus.iter().find(|(r, _)| *r == root)).flatten().map(|(_, lu)| lu);
            let lu = damped.unwrap_or_else(|| self.mass_lu(mb));
            let a = lu.solve(&f.map(|x| x as Real)).unwrap_or_else(|| rapier3d::na::DVector::zeros(f.len()));
            for (k, dk) in self.dofs.iter().enumerate().filter(|(_, dk)| dk.root == d.root) {
                qacc[base + k] = a[dk.index] as f64;
            }
            if let Some(fb) = self.free.filter(|f| f.body == d.root) {
                // Rapier's base velocities are the centre of mass's, v_c = v_o + (o − c) × ω (world frame), so
                // a_o = a_c − (o − c) × α − (ω × (o − c)) × ω; MuJoCo's angular acceleration is Rᵀα (ω × ω = 0)
                let v = mb.generalized_velocity();
                let rot = self.world.bodies[fb.body].position().rotation;
                let arm = soft_contact::v64(fb.arm(rot));
                type V3 = rapier3d::na::Vector3<f64>;
                let (w, arm) = (V3::new(v[3] as f64, v[4] as f64, v[5] as f64), V3::new(arm[0], arm[1], arm[2]));
                let (a_c, alpha) = (V3::new(a[0] as f64, a[1] as f64, a[2] as f64), V3::new(a[3] as f64, a[4] as f64, a[5] as f64));
                let a_o = a_c - arm.cross(&alpha) - w.cross(&arm).cross(&w);
                let q = rapier3d::na::UnitQuaternion::from_quaternion(rapier3d::na::Quaternion::new(
                    rot.w as f64,
                    rot.x as f64,
                    rot.y as f64,
                    rot.z as f64,
                ));
                let local = q.inverse_transform_vector(&alpha);
                qacc[..6].copy_from_slice(&[a_o.x, a_o.y, a_o.z, local.x, local.y, local.z]);
            }
        }
        qacc
    }

    /// One step of MuJoCo's RK4 (see [`MjcfWorld::set_rk4_integrator`]), in MuJoCo's coordinates.
    fn step_rk4(&mut self, tau: &[f64]) {
        const A: [f64; 3] = [0.5, 0.5, 1.0];
        const B: [f64; 4] = [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0];
        let h = self.world.integration_parameters.dt as f64;
        let (q0, v0) = (self.qpos(), self.qvel());
        let mut vs = vec![v0.clone()];
        let mut accs = vec![self.mujoco_acceleration(tau, true, false)];
        for a in A {
            let (vp, ap) = (vs.last().expect("a stage"), accs.last().expect("a stage"));
            let q = self.integrate_pos(&q0, vp, h * a);
            let v: Vec<f64> = v0.iter().zip(ap).map(|(v, acc)| v + h * a * acc).collect();
            self.put_state(&q, &v);
            accs.push(self.mujoco_acceleration(tau, false, false));
            vs.push(v);
        }
        // the contact forces MuJoCo's cfrc_ext holds after the step: the last stage's, about its centres of mass
        self.keep_constraint_state();
        let nv = v0.len();
        let vel: Vec<f64> = (0..nv).map(|k| (0..4).map(|j| B[j] * vs[j][k]).sum::<f64>()).collect();
        let q = self.integrate_pos(&q0, &vel, h);
        let v: Vec<f64> = (0..nv).map(|k| v0[k] + h * (0..4).map(|j| B[j] * accs[j][k]).sum::<f64>()).collect();
        self.put_state(&q, &v);
    }

    /// Keeps the state the constraint problem just solved was solved at, which the step then leaves: the trees'
    /// centres of mass there (about which `soft_forces` act) and its number of floor contacts (MuJoCo's `ncon`).
    fn keep_constraint_state(&mut self) {
        let roots: Vec<RigidBodyHandle> = self.first_dofs().iter().map(|d| d.root).collect();
        self.soft_coms = roots.into_iter().map(|r| (r, Self::tree_com_in(&self.world, r))).collect();
        self.rk4_ncon = Some(self.soft_rows);
    }

    /// One step of MuJoCo's Euler integrator taken whole (see [`MjcfWorld::set_mujoco_euler`]), in MuJoCo's coordinates.
    fn step_mujoco_euler(&mut self, tau: &[f64]) {
        let h = self.world.integration_parameters.dt as f64;
        let (q0, v0) = (self.qpos(), self.qvel());
        let acc = self.mujoco_acceleration(tau, true, true);
        // the contact forces MuJoCo's cfrc_ext holds after the step: those of the step's start
        self.keep_constraint_state();
        let v: Vec<f64> = v0.iter().zip(&acc).map(|(v, a)| v + h * a).collect();
        let q = self.integrate_pos(&q0, &v, h);
        self.put_state(&q, &v);
    }

    /// Replaces Rapier's joint limits by MuJoCo's soft ones, as explicit generalised forces before
    /// each Rapier step: every DoF past its range (violation `pos < 0`) is a row of MuJoCo's constraint
    /// problem, solved jointly with the soft floor contacts' rows (module `soft_contact`): Jacobian `±1` at
    /// the DoF (+ at the lower limit), `aref = −b·(J v) − k·imp·pos`, `k = 1/(dmax²·τ²·ζ²)`, `b = 2/(dmax·τ)`
    /// (`solref` = τ, ζ; `imp` from `solimp`), regulariser `R = (1 − imp)/imp · dof_invweight0` (M⁻¹'s diagonal
    /// at the rest pose, as MuJoCo's `mj_makeImpedance`). Unlike Rapier's limits, which correct the position
    /// without leaving velocity, this throws a joint started far outside its range back in as MuJoCo does (the
    /// Ant's ankles start at 0, 30° outside theirs, at every reset). `solref` and `solimp` are the model's
    /// ([`MjcfModel::limit_solref`]); the time constant is at least twice `mujoco_timestep` and `solimp` is
    /// clamped as MuJoCo's `getsolparam` does. Call it with the world at rest (the model's pose).
    pub fn set_mujoco_limits(&mut self, model: &MjcfModel, mujoco_timestep: f64) {
        let [timeconst, dampratio] = model.limit_solref;
        let timeconst = timeconst.max(2.0 * mujoco_timestep);
        let mut solimp = model.limit_solimp;
        for i in [0, 1, 3] {
            solimp[i] = solimp[i].clamp(1e-4, 0.9999);
        }
        let ranges: Vec<Option<[f64; 2]>> = model.joints.iter().map(|j| j.range).collect();
        for (d, r) in self.dofs.iter().zip(&ranges) {
            if r.is_some() {
                set_limit_axis(&mut self.world, d, false);
            }
        }
        let invweight = self.dofs.iter().map(|d| self.dof_invweight(d)).collect();
        let dmax = solimp[1];
        let k = 1.0 / (dmax * dmax * timeconst * timeconst * dampratio * dampratio);
        let margins = model.joints.iter().map(|j| j.margin).collect();
        self.soft_limits = Some(SoftLimits { ranges, margins, k, b: 2.0 / (dmax * timeconst), solimp, invweight });
        self.rest = WorldState::capture(&self.world);
    }

    /// M⁻¹'s diagonal entry of DoF `d` at the pose now (armature included, no damping).
    fn dof_invweight(&self, d: &Dof) -> f64 {
        let (mb, _) = self.world.multibody_joints.get(d.handle).expect("multibody");
        let mut mb = mb.clone();
        mb.dof_inverse_inertia(&self.world.bodies);
        let mut e = rapier3d::na::DVector::<Real>::zeros(mb.ndofs());
        e[d.index] = 1.0;
        mb.inv_augmented_mass().solve(&e).map_or(0.0, |x| x[d.index] as f64)
    }

    /// One DoF of each multibody (its first in `dofs`), to visit every multibody once.
    fn first_dofs(&self) -> Vec<Dof> {
        let mut out: Vec<Dof> = Vec::new();
        for d in &self.dofs {
            if !out.iter().any(|o| o.root == d.root) {
                out.push(*d);
            }
        }
        out
    }

    /// Factorises every multibody's joint-space mass matrix at the current pose (armature included, no
    /// damping: MuJoCo's `M`) for the soft limits and contacts of the coming step, or for an RK4 stage
    /// ([`MjcfWorld::mass_lu`]). `kinematics`: run each multibody's forward kinematics first (not needed right
    /// after [`MjcfWorld::put_state`], which ran it at the same pose). `M = Σ Jᵢᵀ diag(mᵢ, Iᵢ) Jᵢ + armature`
    /// over the links' body Jacobians, assembled and factorised with the same operations, in the same order, as
    /// Rapier's `Multibody::dof_inverse_inertia` does (so the bits are its), without what that also computes
    /// and this does not use: a second forward kinematics, the Coriolis matrices, the gyroscopic mass matrix and
    /// its factorisation, and one solve per DoF. Rapier's own step assembles its own matrices.
    fn factor_mass_matrices(&mut self, kinematics: bool) {
        use rapier3d::na::{DMatrix, SMatrix, LU};
        let first = self.first_dofs();
        self.mass_lus.clear();
        self.damped_lus.clear();
        let h = self.world.integration_parameters.dt;
        for d in &first {
            let w = &mut self.world;
            let Some((mb, _)) = w.multibody_joints.get_mut(d.handle) else { continue };
            if kinematics {
                mb.forward_kinematics(&w.bodies, false);
            }
            let n = mb.ndofs();
            let mut m = DMatrix::<Real>::zeros(n, n);
            for (li, link) in mb.links().enumerate() {
                let mprops = w.bodies[link.rigid_body_handle()].mass_properties();
                let (mass, i) = (mprops.effective_mass(), mprops.effective_angular_inertia());
                let mut spatial = SMatrix::<Real, 6, 6>::zeros();
                for k in 0..3 {
                    spatial[(k, k)] = mass[k];
                }
                let inertia = rapier3d::na::Matrix3::new(i.m11, i.m12, i.m13, i.m12, i.m22, i.m23, i.m13, i.m23, i.m33);
                spatial.fixed_view_mut::<3, 3>(3, 3).copy_from(&inertia);
                m.quadform(1.0, &spatial, mb.body_jacobian(li), 1.0);
            }
            let (damping, armature) = (mb.damping(), mb.armature());
            for i in 0..n {
                m[(i, i)] += damping[i] * 0.0 + armature[i];
            }
            if self.own_step == Some(OwnStep::Euler) && damping.iter().any(|x| *x > 0.0) {
                let mut damped = m.clone();
                for i in 0..n {
                    damped[(i, i)] += h * damping[i];
                }
                self.damped_lus.push((d.root, LU::new(damped)));
            }
            self.mass_lus.push((d.root, LU::new(m)));
        }
    }

    /// The LU factorisation of `mb`'s mass matrix at the current pose, which [`MjcfWorld::step`] and the RK4
    /// stages have [`MjcfWorld::factor_mass_matrices`] leave whenever a soft limit, a contact or an RK4 stage
    /// will use it.
    fn mass_lu(&self, mb: &Multibody) -> &rapier3d::na::LU<Real, rapier3d::na::Dyn, rapier3d::na::Dyn> {
        let root = mb.root().rigid_body_handle();
        let lu = &self.mass_lus.iter().find(|(r, _)| *r == root).expect("factor_mass_matrices first").1;
        debug_assert_eq!(lu.lu_internal().nrows(), mb.ndofs(), "factor_mass_matrices at this pose");
        lu
    }

    /// The DoFs past their range (within their `margin` of it) now (see [`MjcfWorld::set_mujoco_limits`]).
    fn passed_limits(&self, s: &SoftLimits) -> Vec<soft_contact::PassedLimit> {
        let mut out = Vec::new();
        for (k, range) in s.ranges.iter().enumerate() {
            let Some([lo, hi]) = *range else { continue };
            // MuJoCo's rows: each side within `margin` of the range, its violation the distance less the margin
            let (q, m) = (self.q(k), s.margins[k]);
            if q - lo < m {
                out.push(soft_contact::PassedLimit { k, sign: 1.0, pos: q - lo - m });
            }
            if hi - q < m {
                out.push(soft_contact::PassedLimit { k, sign: -1.0, pos: hi - q - m });
            }
        }
        out
    }

    /// MuJoCo's geom `margin` (the larger of a pair's, here one value for all): contacts push from
    /// this distance on, so bodies rest that much (less the contacts' softness) above what they
    /// touch. Rapier's contact skin on every collider of the model's bodies (the world's geoms keep
    /// none, so a pair's skin is the margin, not twice it); [`MjcfWorld::contact_count`] counts the
    /// points within it, as MuJoCo's `ncon` does.
    pub fn set_contact_margin(&mut self, margin: f64) {
        for (_, c) in self.world.colliders.iter_mut() {
            if c.user_data != 0 {
                c.set_contact_skin(margin as Real);
            }
        }
        self.margin = margin;
        self.rest = WorldState::capture(&self.world);
    }

    /// Contact points where two geoms overlap (distance ≤ 0, or within the contact margin when there
    /// is one), as MuJoCo's `ncon` counts them (Rapier also keeps predicted contacts of nearby geoms,
    /// not counted here). After an RK4 step, those of its last stage, as MuJoCo's `ncon` after an RK4
    /// `mj_step` (no two body geoms touched: the step would have been Rapier's).
    pub fn contact_count(&self) -> usize {
        if let Some(n) = self.rk4_ncon {
            return n;
        }
        self.world
            .contact_pairs()
            .filter(|p| !self.left_out(p))
            .filter_map(|p| match &p.contacts {
                PairContacts::Rigid(r) => Some(r),
                PairContacts::Soft { .. } => None,
            })
            .flat_map(|r| r.manifolds.iter())
            .map(|m| m.points.iter().filter(|pt| pt.dist as f64 <= 0.0f64.max(self.margin - 1e-9)).count())
            .sum::<usize>()
            + self.soft_contact_count()
    }

    /// qpos of DoF `k`.
    fn q(&self, k: usize) -> f64 {
        let d = &self.dofs[k];
        let (mb, link) = self.world.multibody_joints.get(d.handle).expect("multibody");
        mb.link(link).expect("link").joint().coords()[d.coord] as f64 + d.reference
    }

    /// Generalised positions (MuJoCo's qpos: the floating base's position and orientation
    /// quaternion (w, x, y, z) first if there is one).
    pub fn qpos(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.dofs.len() + 7);
        if let Some(f) = &self.free {
            let p = *self.world.bodies[f.body].position() * f.offset;
            let (t, r) = (p.translation, p.rotation);
            out.extend([t.x, t.y, t.z, r.w, r.x, r.y, r.z].map(|x| x as f64));
        }
        out.extend((0..self.dofs.len()).map(|k| self.q(k)));
        out
    }

    /// The floating base's linear velocity (world frame) and angular velocity (world frame).
    fn free_velocity(&self, f: &FreeBase) -> (Vector, Vector) {
        match f.multibody {
            Some(h) => {
                let (mb, _) = self.world.multibody_joints.get(h).expect("multibody");
                let v = mb.generalized_velocity();
                (Vector::new(v[0], v[1], v[2]), Vector::new(v[3], v[4], v[5]))
            }
            None => {
                let rb = &self.world.bodies[f.body];
                (rb.linvel(), rb.angvel())
            }
        }
    }

    /// Generalised velocities (MuJoCo's qvel: the floating base's linear velocity (of its body frame's
    /// origin) in the world frame and angular velocity in its body frame first if there is one).
    pub fn qvel(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.dofs.len() + 6);
        if let Some(f) = &self.free {
            let (lin, ang) = self.free_velocity(f);
            let rot = self.world.bodies[f.body].position().rotation;
            let (lin, local) = (lin + ang.cross(f.arm(rot)), rot.inverse() * ang);
            out.extend([lin.x, lin.y, lin.z, local.x, local.y, local.z].map(|x| x as f64));
        }
        out.extend(self.dofs.iter().map(|d| {
            let (mb, _) = self.world.multibody_joints.get(d.handle).expect("multibody");
            mb.generalized_velocity()[d.index] as f64
        }));
        out
    }

    /// The world pose of the floating base, if any.
    pub fn free_pose(&self) -> Option<Pose> {
        self.free.map(|f| *self.world.bodies[f.body].position() * f.offset)
    }

    /// Puts the world back to the state [`MjcfWorld::build`] made (qpos = `ref`, at rest, all
    /// bodies awake), then sets `qpos`, `qvel`: a fresh simulator state, as from a new build but
    /// without rebuilding the world (bit-identical to it).
    pub fn reset_state(&mut self, qpos: &[f64], qvel: &[f64]) {
        self.rest.clone().restore_into(&mut self.world);
        self.soft_forces.clear();
        self.soft_coms.clear();
        self.rk4_ncon = None;
        self.set_state(qpos, qvel);
    }

    /// Sets qpos and qvel ([`MjcfWorld::put_state`]; a floating base's quaternion normalised, as MuJoCo normalises
    /// it when it integrates) and wakes the trees nothing can set in motion, letting those that start at rest sleep.
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) {
        self.put_state(qpos, qvel);
        let qvel = if self.free.is_some() { &qvel[6..] } else { qvel };
        for (tree, links) in &self.still_trees {
            let at_rest = tree.iter().all(|k| qvel[*k] == 0.0);
            for h in links {
                let a = self.world.bodies[*h].activation_mut();
                *a = RigidBodyActivation::cannot_sleep();
                if at_rest {
                    a.normalized_linear_threshold = 1e-9;
                    a.angular_threshold = 1e-9;
                    a.time_until_sleep = 0.0;
                }
            }
            if let Some(h) = links.first() {
                self.world.islands.wake_up(&mut self.world.bodies, *h, true);
            }
        }
    }

    /// Switches the limit of DoF `dof` on or off (the joint's range is kept).
    pub fn set_limit_enabled(&mut self, dof: usize, enabled: bool) {
        set_limit_axis(&mut self.world, &self.dofs[dof], enabled);
    }

    /// Joint-space mass matrix (armature included), nv × nv in MuJoCo's qvel order, as Rapier
    /// assembles it now (dt = 0: without damping terms); zero between separate multibodies. A
    /// floating base's rows are MuJoCo's (angular velocity in the body frame).
    pub fn mass_matrix(&self) -> Option<Vec<Vec<f64>>> {
        let n = self.nv();
        let mut out = vec![vec![0.0; n]; n];
        self.per_multibody(|mb, mine, t| {
            let m = self.rapier_mass_matrix(mb)?;
            let m = match t {
                Some((t, _)) => t.transpose() * m * t,
                None => m,
            };
            for &(i, ii) in mine {
                for &(j, jj) in mine {
                    out[i][j] = m[(ii, jj)];
                }
            }
            Some(())
        })?;
        Some(out)
    }

    /// MuJoCo's `qfrc_bias` now: the generalised Coriolis, centrifugal, gyroscopic and gravity forces
    /// (`M·qacc + qfrc_bias` = the applied forces), in MuJoCo's qvel order. The soft contacts' free
    /// acceleration uses the same terms ([`MjcfWorld::coriolis_forces`]); the tests hold them to MuJoCo's.
    pub fn bias_forces(&self) -> Option<Vec<f64>> {
        self.in_qvel_order(|mb, arm| {
            let b = self.coriolis_forces(mb) - self.gravity_forces(mb);
            // Rapier's base velocities v_r = T·v (MuJoCo's v), so MuJoCo's bias is Tᵀ(b + M·Ṫv): Ṫv is
            // (ω × (o − c)) × ω in the linear rows (o − c fixed in the base) and zero elsewhere.
            let Some(arm) = arm else { return Some(b) };
            let v = mb.generalized_velocity();
            let w = rapier3d::na::Vector3::new(v[3] as f64, v[4] as f64, v[5] as f64);
            let arm = rapier3d::na::Vector3::new(arm.x as f64, arm.y as f64, arm.z as f64);
            let tdot_v = w.cross(&arm).cross(&w);
            let mut e = rapier3d::na::DVector::<f64>::zeros(b.len());
            e.rows_mut(0, 3).copy_from(&tdot_v);
            Some(b + self.rapier_mass_matrix(mb)? * e)
        })
    }

    /// Generalised forces in MuJoCo's qvel order: `f(multibody, arm)` gives each multibody's in Rapier's DoF
    /// order (`arm`, the floating base's `o − c`, where it is the base's: see [`MjcfWorld::per_multibody`]), and
    /// a floating base's are mapped by `Tᵀ` (the power `fᵀ v_Rapier = fᵀ T v` is MuJoCo's).
    fn in_qvel_order(
        &self,
        mut f: impl FnMut(&Multibody, Option<Vector>) -> Option<rapier3d::na::DVector<f64>>,
    ) -> Option<Vec<f64>> {
        let mut out = vec![0.0; self.nv()];
        self.per_multibody(|mb, mine, t| {
            let g = f(mb, t.as_ref().map(|(_, arm)| *arm))?;
            let g = match t {
                Some((t, _)) => t.transpose() * g,
                None => g,
            };
            for &(i, ii) in mine {
                out[i] = g[ii];
            }
            Some(())
        })?;
        Some(out)
    }

    /// MuJoCo's nv: the model's DoFs and a floating base's six.
    fn nv(&self) -> usize {
        self.dofs.len() + if self.free.is_some() { 6 } else { 0 }
    }

    /// `mb`'s joint-space mass matrix at its pose now, armature included, without damping (dt = 0).
    fn rapier_mass_matrix(&self, mb: &Multibody) -> Option<rapier3d::na::DMatrix<f64>> {
        let mut mb = mb.clone();
        mb.dof_inverse_inertia(&self.world.bodies);
        Some(mb.inv_augmented_mass().try_inverse()?.try_inverse()?.map(|x| x as f64))
    }

    /// Calls `f(multibody, [(MuJoCo's qvel index, the multibody's DoF index)], (T, o − c))` for every
    /// multibody with a model DoF; `T` and the arm `o − c` (world frame) for the floating base's: Rapier's base
    /// velocities are (v, ω) of the centre of mass in the world frame, MuJoCo's (v_o, R⁻¹ω) of the body
    /// frame's origin o, v = v_o + (o − c) × ω, so v_Rapier = T·v_MuJoCo with T = [[I, [o − c]× R], [0, R]].
    fn per_multibody(
        &self,
        mut f: impl FnMut(&Multibody, &[(usize, usize)], Option<(rapier3d::na::DMatrix<f64>, Vector)>) -> Option<()>,
    ) -> Option<()> {
        let base = if self.free.is_some() { 6 } else { 0 };
        let mut done: Vec<RigidBodyHandle> = Vec::new();
        for d in &self.dofs {
            let (mb, _) = self.world.multibody_joints.get(d.handle)?;
            let root = mb.root().rigid_body_handle();
            if done.contains(&root) {
                continue;
            }
            done.push(root);
            let mut mine: Vec<(usize, usize)> = self
                .dofs
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    let (mbe, _) = self.world.multibody_joints.get(e.handle).expect("multibody");
                    mbe.root().rigid_body_handle() == root
                })
                .map(|(k, e)| (base + k, e.index))
                .collect();
            let t = self.free.filter(|f| f.body == root).map(|f| {
                let r = self.world.bodies[f.body].position().rotation;
                let arm = f.arm(r);
                let mut t = rapier3d::na::DMatrix::<f64>::identity(mb.ndofs(), mb.ndofs());
                for c in 0..3 {
                    let col = r * [Vector::X, Vector::Y, Vector::Z][c];
                    let lever = arm.cross(col);
                    for i in 0..3 {
                        t[(3 + i, 3 + c)] = col[i] as f64;
                        t[(i, 3 + c)] = lever[i] as f64;
                    }
                }
                mine.splice(0..0, (0..6).map(|i| (i, i)));
                (t, arm)
            });
            f(mb, &mine, t)?;
        }
        Some(())
    }

    /// MuJoCo's com-based quantities of every body of the model (`mj_comPos`, `mj_comVel`), from the link
    /// poses and generalised velocities now: per body its centre of mass (`xipos`), `cinert` (inertia
    /// about the centre of mass `c` of the body's tree, MuJoCo's `subtree_com` of its root: xx, yy, zz, xy,
    /// xz, yz, then m·(xipos − c), m) and `cvel` (angular velocity, then the velocity of the point at `c`
    /// moving with the body), world axes.
    pub fn com_quantities(&self, model: &MjcfModel) -> ComQuantities {
        let n = model.bodies.len();
        // the carrier's pose, the velocity of its centre of mass, its angular velocity and its tree's root
        let carrier_state = |h: RigidBodyHandle| -> (Pose, Vector, Vector, RigidBodyHandle) {
            let rb = &self.world.bodies[h];
            match self.world.multibody_joints.rigid_body_link(h) {
                Some(l) => {
                    let mb = self.world.multibody_joints.get_multibody(l.multibody).expect("multibody");
                    let v = mb.body_jacobian(l.id) * mb.generalized_velocity();
                    let link = mb.link(l.id).expect("link");
                    let (lin, ang) = (Vector::new(v[0], v[1], v[2]), Vector::new(v[3], v[4], v[5]));
                    (*link.local_to_world(), lin, ang, mb.root().rigid_body_handle())
                }
                None => (*rb.position(), rb.linvel(), rb.angvel(), h),
            }
        };
        let mut out = ComQuantities { xipos: vec![[0.0; 3]; n], cinert: vec![[0.0; 10]; n], cvel: vec![[0.0; 6]; n] };
        let mut per_body = Vec::with_capacity(n);
        // per tree (its root's handle): mass and mass-weighted centre of mass
        let mut trees: Vec<(RigidBodyHandle, f64, [f64; 3])> = Vec::new();
        for (b, spec) in model.bodies.iter().enumerate() {
            let h = self.bodies[b];
            let (pose, lin, ang, tree) = carrier_state(h);
            let carrier_com = pose.transform_point(self.world.bodies[h].mass_properties().local_mprops.local_com);
            let frame = pose * self.body_offsets[b];
            let xipos = soft_contact::v64(frame.transform_point(spec.inertia.local_com));
            out.xipos[b] = xipos;
            let m = spec.inertia.mass() as f64;
            match trees.iter_mut().find(|t| t.0 == tree) {
                Some(t) => (0..3).for_each(|i| t.2[i] += m * xipos[i]),
                None => trees.push((tree, 0.0, xipos.map(|x| m * x))),
            }
            trees.iter_mut().find(|t| t.0 == tree).expect("just added").1 += m;
            per_body.push((frame, carrier_com, lin, ang, tree));
        }
        for (b, spec) in model.bodies.iter().enumerate() {
            let (frame, carrier_com, lin, ang, tree) = per_body[b];
            let &(_, m_tree, mc) = trees.iter().find(|t| t.0 == tree).expect("the body's tree");
            let c = if m_tree > 0.0 { mc.map(|x| x / m_tree) } else { out.xipos[b] };
            let m = spec.inertia.mass() as f64;
            let d = [out.xipos[b][0] - c[0], out.xipos[b][1] - c[1], out.xipos[b][2] - c[2]];
            // the body's inertia about its centre of mass in world axes, then moved to c (parallel axes)
            let rot = frame.rotation * spec.inertia.principal_inertia_local_frame;
            let i = spec.inertia.principal_inertia();
            let axes = [rot * Vector::X, rot * Vector::Y, rot * Vector::Z].map(soft_contact::v64);
            let ip = [i.x as f64, i.y as f64, i.z as f64];
            let iw = |r: usize, s: usize| (0..3).map(|k| axes[k][r] * ip[k] * axes[k][s]).sum::<f64>();
            out.cinert[b] = [
                iw(0, 0) + m * (d[1] * d[1] + d[2] * d[2]),
                iw(1, 1) + m * (d[0] * d[0] + d[2] * d[2]),
                iw(2, 2) + m * (d[0] * d[0] + d[1] * d[1]),
                iw(0, 1) - m * d[0] * d[1],
                iw(0, 2) - m * d[0] * d[2],
                iw(1, 2) - m * d[1] * d[2],
                m * d[0],
                m * d[1],
                m * d[2],
                m,
            ];
            let at_c = soft_contact::v64(lin + ang.cross(Vector::new(c[0] as Real, c[1] as Real, c[2] as Real) - carrier_com));
            let w = soft_contact::v64(ang);
            out.cvel[b] = [w[0], w[1], w[2], at_c[0], at_c[1], at_c[2]];
        }
        out
    }

    /// The contact forces on every body of the model over the last Rapier step, as MuJoCo's
    /// `cfrc_ext` (what `mj_rnePostConstraint` computes): per body, `[torque; force]` in the world
    /// frame, the torque about the centre of mass of the body's whole tree (MuJoCo's
    /// `subtree_com` of its root body). Each contact's total impulse of the step (normal and
    /// friction) over the step's length; the force on a body is what the other geom exerts on it.
    pub fn contact_wrenches(&self, model: &MjcfModel) -> Vec<[f64; 6]> {
        use rapier3d::utils::OrthonormalBasis;
        let mut out = vec![[0.0; 6]; model.bodies.len()];
        let dt = self.world.integration_parameters.dt;
        if dt <= 0.0 {
            return out;
        }
        let mut tree_com: Vec<(RigidBodyHandle, Vector)> = self.soft_coms.clone();
        let mut com_of = |world: &PhysicsWorld, h: RigidBodyHandle| -> Vector {
            let root = Self::tree_root(world, h);
            if let Some((_, c)) = tree_com.iter().find(|(r, _)| *r == root) {
                return *c;
            }
            let c = Self::tree_com_in(world, h);
            tree_com.push((root, c));
            c
        };
        // after an RK4 step (soft_coms set), no Rapier contact acted: its pairs hold an older step's impulses
        let rapier_pairs = self.soft_coms.is_empty().then(|| self.world.contact_pairs()).into_iter().flatten();
        for pair in rapier_pairs {
            let PairContacts::Rigid(r) = &pair.contacts else { continue };
            let body_of = |c: ColliderHandle| {
                self.world.colliders.get(c).and_then(|c| c.user_data.checked_sub(1)).map(|b| b as usize)
            };
            let (b1, b2) = (body_of(pair.collider1), body_of(pair.collider2));
            if b1.is_none() && b2.is_none() {
                continue;
            }
            let Some(pos1) = self.world.colliders.get(pair.collider1).map(|c| *c.position()) else { continue };
            for manifold in &r.manifolds {
                let dir1 = -manifold.data.normal;
                let t1 = dir1.orthonormal_vector();
                let t2 = dir1.cross(t1);
                let frame1 = manifold.subshape_pos1().map_or(pos1, |p| pos1 * *p);
                for pt in &manifold.points {
                    let d = &pt.data;
                    if d.impulse == 0.0 && d.tangent_impulse[0] == 0.0 && d.tangent_impulse[1] == 0.0 {
                        continue;
                    }
                    // the impulse on collider 1's body; collider 2's gets the opposite
                    let f1 = (dir1 * d.impulse + t1 * d.tangent_impulse[0] + t2 * d.tangent_impulse[1]) / dt;
                    let p = frame1.transform_point(pt.local_p1) + manifold.data.normal * (0.5 * pt.dist);
                    for (b, f) in [(b1, f1), (b2, -f1)] {
                        let Some(b) = b else { continue };
                        let c = com_of(&self.world, self.bodies[b]);
                        let tq = (p - c).cross(f);
                        for i in 0..3 {
                            out[b][i] += tq[i] as f64;
                            out[b][3 + i] += f[i] as f64;
                        }
                    }
                }
            }
        }
        if self.soft_contacts.is_some() {
            for sf in &self.soft_forces {
                let Some(b) = sf.model_body else { continue };
                let c = com_of(&self.world, self.bodies[b]);
                let tq = (sf.point - c).cross(sf.force);
                for i in 0..3 {
                    out[b][i] += tq[i] as f64;
                    out[b][3 + i] += sf.force[i] as f64;
                }
            }
        }
        out
    }

    /// The root rigid body of `h`'s multibody (`h` itself outside every multibody).
    fn tree_root(world: &PhysicsWorld, h: RigidBodyHandle) -> RigidBodyHandle {
        let mb = world.multibody_joints.rigid_body_link(h).and_then(|l| world.multibody_joints.get_multibody(l.multibody));
        mb.map_or(h, |m| m.root().rigid_body_handle())
    }

    /// The centre of mass of `h`'s whole multibody now (of `h` alone outside every multibody), MuJoCo's
    /// `subtree_com` of its root.
    fn tree_com_in(world: &PhysicsWorld, h: RigidBodyHandle) -> Vector {
        let mb = world.multibody_joints.rigid_body_link(h).and_then(|l| world.multibody_joints.get_multibody(l.multibody));
        let links: Vec<RigidBodyHandle> = mb.map_or_else(|| vec![h], |m| m.links().map(|k| k.rigid_body_handle()).collect());
        let (mut m, mut mc) = (0.0, Vector::ZERO);
        for k in links {
            let mp = world.bodies[k].mass_properties();
            m += mp.local_mprops.mass();
            mc += mp.world_com * mp.local_mprops.mass();
        }
        if m > 0.0 {
            mc / m
        } else {
            Vector::ZERO
        }
    }

    /// `n` steps with generalised forces `tau`, then qpos and qvel; a non-finite state is the error of
    /// environment step `env_step`.
    pub fn advance(&mut self, tau: &[f64], n: usize, env_step: usize) -> Result<(Vec<f64>, Vec<f64>), EnvError> {
        for _ in 0..n {
            self.step(tau);
        }
        let (q, v) = (self.qpos(), self.qvel());
        if !q.iter().chain(&v).all(|x| x.is_finite()) {
            return Err(EnvError::PhysicsBlowUp { step: env_step, what: format!("qpos = {q:?}, qvel = {v:?}") });
        }
        Ok((q, v))
    }

    pub fn step(&mut self, tau: &[f64]) {
        if let Some(kind) = self.own_step {
            if !self.body_pairs || !self.bodies_touch() {
                return match kind {
                    OwnStep::Rk4 => self.step_rk4(tau),
                    OwnStep::Euler => self.step_mujoco_euler(tau),
                };
            }
            self.rk4_fallbacks += 1;
        }
        self.soft_coms.clear();
        self.rk4_ncon = None;
        let tau = self.with_constraints(self.with_springs(tau));
        let euler = if self.euler { self.euler_forces(&tau) } else { Vec::new() };
        self.step_with(&tau, &euler)
    }

    /// Per multibody (a joint of it), the generalised forces of MuJoCo's Euler step `τ − c − D·v` at the state
    /// now, in Rapier's DoF order, with the soft contacts' forces of `soft_forces` in `τ` (see
    /// [`MjcfWorld::set_euler_integrator`]).
    fn euler_forces(&self, tau: &[f64]) -> Vec<(MultibodyJointHandle, rapier3d::na::DVector<f64>)> {
        let mut out = Vec::new();
        for d in self.first_dofs() {
            let (mb, _) = self.world.multibody_joints.get(d.handle).expect("multibody");
            let mut f = self.applied_forces(mb, tau);
            // a soft force off every multibody cannot be put in generalised forces: that multibody's step stays Rapier's
            if self.add_soft_forces(mb, &mut f).is_some() {
                soft_contact::subtract_damping(mb, &mut f);
                out.push((d.handle, f));
            }
        }
        out
    }

    /// Replaces each multibody's free acceleration of the Rapier step just taken by MuJoCo's Euler one,
    /// `a = (M + h·D)⁻¹ f` for `euler`'s forces `f`: `Δv = h·Δa`, `Δq = h²·Δa` (see
    /// [`MjcfWorld::set_euler_integrator`]). `M + h·D` at the step's start is the matrix Rapier factorised for
    /// the step and keeps until the next (its plain augmented mass, without the Coriolis terms). Where that
    /// factorisation leaves DoFs out (kinematic links, which no model here has) the step stays Rapier's.
    fn correct_to_euler(&mut self, euler: &[(MultibodyJointHandle, rapier3d::na::DVector<f64>)]) {
        let h = self.world.integration_parameters.dt as f64;
        for (handle, f) in euler {
            let (mb, _) = self.world.multibody_joints.get_mut(*handle).expect("multibody");
            // a sleeping multibody did not move; a factorisation without every DoF is not the whole step's
            if self.world.bodies[mb.root().rigid_body_handle()].is_sleeping() || mb.inv_augmented_mass().lu_internal().nrows() != mb.ndofs() {
                continue;
            }
            let Some(a) = mb.inv_augmented_mass().solve(&f.map(|x| x as Real)) else { continue };
            let dv: Vec<f64> = a.iter().zip(mb.generalized_acceleration().iter()).map(|(t, r)| h * (*t as f64 - *r as f64)).collect();
            let mut gv = mb.generalized_velocity_mut();
            for (x, d) in gv.iter_mut().zip(&dv) {
                *x += *d as Real;
            }
            let dq: Vec<Real> = dv.iter().map(|d| (h * d) as Real).collect();
            mb.apply_displacements(&dq);
            mb.forward_kinematics(&self.world.bodies, false);
            mb.update_rigid_bodies(&mut self.world.bodies, true);
        }
    }

    /// `tau` (one per model DoF) with the joint springs' forces added.
    fn with_springs(&self, tau: &[f64]) -> Vec<f64> {
        let mut tau = tau.to_vec();
        for &(k, stiffness, springref) in &self.springs {
            tau[k] -= stiffness * (self.q(k) - springref);
        }
        tau
    }

    /// `tau` (one per model DoF) with the soft limits' forces added, the soft contacts' forces of this pose
    /// left in `soft_forces` (see [`MjcfWorld::set_mujoco_limits`], [`MjcfWorld::set_mujoco_contacts`]).
    fn with_constraints(&mut self, tau: Vec<f64>) -> Vec<f64> {
        self.constraints(tau, false)
    }

    /// [`MjcfWorld::with_constraints`] with the mass matrices factorised at this pose already.
    fn constraints_factored(&mut self, tau: Vec<f64>) -> Vec<f64> {
        self.constraints(tau, true)
    }

    fn constraints(&mut self, mut tau: Vec<f64>, factored: bool) -> Vec<f64> {
        let limits = self.soft_limits.as_ref().map_or_else(Vec::new, |s| self.passed_limits(s));
        let contacts = self.soft_contacts.as_ref().map_or_else(Vec::new, |c| self.floor_contacts(c));
        self.soft_rows = contacts.len();
        self.soft_forces.clear();
        if !limits.is_empty() || !contacts.is_empty() {
            if !factored {
                self.factor_mass_matrices(true);
            }
            self.soft_forces = self.solve_constraints(&limits, &contacts, &mut tau);
        }
        tau
    }

    /// MuJoCo's `qfrc_constraint` at the state now for actuator forces `tau` (one per model DoF): the
    /// generalised forces of MuJoCo's soft limits and floor contacts that the next step applies, in MuJoCo's
    /// qvel order (zero where Rapier's own limits and contacts are in use). The tests hold it to MuJoCo's.
    pub fn constraint_forces(&mut self, tau: &[f64]) -> Option<Vec<f64>> {
        let applied = self.with_springs(tau);
        let limited = self.with_constraints(applied.clone());
        self.in_qvel_order(|mb, _| {
            let root = mb.root().rigid_body_handle();
            let mut g = rapier3d::na::DVector::<f64>::zeros(mb.ndofs());
            for (k, d) in self.dofs.iter().enumerate().filter(|(_, d)| d.root == root) {
                g[d.index] += limited[k] - applied[k];
            }
            self.add_soft_forces(mb, &mut g)?;
            Some(g)
        })
    }

    /// One Rapier step with generalised forces `tau` and the soft floor contacts' forces of this pose
    /// (`soft_forces`).
    fn step_with(&mut self, tau: &[f64], euler: &[(MultibodyJointHandle, rapier3d::na::DVector<f64>)]) {
        for d in &self.dofs {
            for h in [Some(d.child), d.parent].into_iter().flatten() {
                let rb = &mut self.world.bodies[h];
                rb.reset_forces(false);
                rb.reset_torques(false);
            }
        }
        for f in &self.fluid {
            let rb = &mut self.world.bodies[f.handle];
            rb.reset_forces(false);
            rb.reset_torques(false);
        }
        for (d, t) in self.dofs.iter().zip(tau) {
            if *t == 0.0 {
                continue;
            }
            let pose = *self.world.bodies[d.child].position();
            let frame = pose * d.frame2;
            let axis = frame.rotation * [Vector::X, Vector::Y, Vector::Z][d.coord % 3];
            let t = *t as Real;
            if d.coord >= 3 {
                self.world.bodies[d.child].add_torque(axis * t, false);
                if let Some(p) = d.parent {
                    self.world.bodies[p].add_torque(-axis * t, false);
                }
            } else {
                let point = frame.translation;
                self.world.bodies[d.child].add_force_at_point(axis * t, point, false);
                if let Some(p) = d.parent {
                    self.world.bodies[p].add_force_at_point(-axis * t, point, false);
                }
            }
        }
        for f in &self.soft_forces {
            self.world.bodies[f.body].add_force_at_point(f.force, f.point, false);
        }
        for (f, (force, torque)) in self.fluid.iter().zip(self.fluid_wrenches()) {
            let rb = &mut self.world.bodies[f.handle];
            rb.add_force(force, false);
            rb.add_torque(torque, false);
        }
        self.world.step_with_events(&self.parent_child, &());
        if !euler.is_empty() {
            self.correct_to_euler(euler);
        }
        if !self.limit_groups.is_empty() {
            self.project_limits();
        }
    }

    /// MuJoCo's inertia-box fluid force and torque on each body of `fluid` (world frame, the force at the body's
    /// centre of mass), from the velocities its multibody's generalised velocities give now.
    fn fluid_wrenches(&self) -> Vec<(Vector, Vector)> {
        let mut vels: Vec<(MultibodyJointHandle, Vec<(Vector, Vector)>)> = Vec::new();
        for f in &self.fluid {
            if !vels.iter().any(|(h, _)| *h == f.multibody) {
                let (mb, _) = self.world.multibody_joints.get(f.multibody).expect("multibody");
                vels.push((f.multibody, link_velocities(mb, &self.world.bodies)));
            }
        }
        self.fluid
            .iter()
            .map(|f| {
                let (lin, ang) = vels.iter().find(|(h, _)| *h == f.multibody).expect("velocities").1[f.link];
                let rb = &self.world.bodies[f.handle];
                let rot = rb.position().rotation * rb.mass_properties().local_mprops.principal_inertia_local_frame;
                let v = rot.inverse() * lin;
                let w = rot.inverse() * ang;
                let (force, torque) = inertia_box_force_torque(
                    f.mass,
                    f.inertia,
                    self.density,
                    self.viscosity,
                    [v.x as f64, v.y as f64, v.z as f64],
                    [w.x as f64, w.y as f64, w.z as f64],
                );
                let to_world = |a: [f64; 3]| rot * Vector::new(a[0] as Real, a[1] as Real, a[2] as Real);
                (to_world(force), to_world(torque))
            })
            .collect()
    }

    /// Adds to `g` the generalised forces on `mb` of the fluid's wrenches `wrenches` (one per body of `fluid`, as
    /// [`MjcfWorld::fluid_wrenches`] gives them), in Rapier's DoF order.
    fn add_fluid_forces(&self, mb: &Multibody, wrenches: &[(Vector, Vector)], g: &mut rapier3d::na::DVector<f64>) {
        let root = mb.root().rigid_body_handle();
        for (f, (force, torque)) in self.fluid.iter().zip(wrenches) {
            let Some(link) = self.world.multibody_joints.rigid_body_link(f.handle) else { continue };
            if self.world.multibody_joints.get_multibody(link.multibody).is_none_or(|m| m.root().rigid_body_handle() != root) {
                continue;
            }
            let bj = mb.body_jacobian(link.id);
            for j in 0..g.len() {
                g[j] += (0..3).map(|i| force[i] as f64 * bj[(i, j)] as f64 + torque[i] as f64 * bj[(3 + i, j)] as f64).sum::<f64>();
            }
        }
    }

    /// Puts every DoF that passed its range back on it and stops its motion into the limit (see
    /// [`RapierSettings::limit_projection`]). For the set A of DoFs at a limit, with C = M⁻¹ columns A
    /// and S = its rows A: `Δq = C · S⁻¹ (limit − q)_A`, then `Δv = C · S⁻¹ (−v)_A` for those moving
    /// into their limit: the positions and the inelastic impulse of hard constraints on A, jointly
    /// (one at a time, two limits would push each other out again).
    fn project_limits(&mut self) {
        use rapier3d::na::{DMatrix, DVector};
        for group in &self.limit_groups {
            let mine: Vec<(usize, Dof, [f64; 2])> =
                group.iter().filter_map(|&k| self.projected[k].map(|r| (k, self.dofs[k], r))).collect();
            let h = self.dofs[group[0]].handle;
            let (mb, _) = self.world.multibody_joints.get_mut(h).expect("multibody");
            let n = mb.ndofs();
            let q_of = |mb: &Multibody, d: &Dof| mb.link(d.link).expect("link").joint().coords()[d.coord] as f64 + d.reference;
            // M⁻¹ columns and the rows of the set, from Rapier's factorisation of this step
            let solve = |mb: &Multibody, set: &[usize]| -> Option<(DMatrix<Real>, DMatrix<Real>)> {
                let mut c = DMatrix::<Real>::zeros(n, set.len());
                for (col, &i) in set.iter().enumerate() {
                    let mut e = DVector::<Real>::zeros(n);
                    e[i] = 1.0;
                    c.set_column(col, &mb.inv_augmented_mass().solve(&e)?);
                }
                let s = DMatrix::from_fn(set.len(), set.len(), |r, col| c[(set[r], col)]);
                Some((c, s))
            };
            let mut touched = false;
            // DoFs held on a limit: (position in `mine`, the limit); a pass that pushes another one
            // out adds it, and the next pass holds all of them at once
            let mut held: Vec<(usize, f64)> = Vec::new();
            for _ in 0..3 {
                let mut grew = false;
                for (m, (_, d, [lo, hi])) in mine.iter().enumerate() {
                    let q = q_of(mb, d);
                    if !held.iter().any(|h| h.0 == m) && (q > *hi || q < *lo) {
                        held.push((m, if q > *hi { *hi } else { *lo }));
                        grew = true;
                    }
                }
                if !grew {
                    break;
                }
                let set: Vec<usize> = held.iter().map(|(m, _)| mine[*m].1.index).collect();
                let rhs = DVector::from_iterator(held.len(), held.iter().map(|(m, lim)| (lim - q_of(mb, &mine[*m].1)) as Real));
                let Some((c, s)) = solve(mb, &set) else { break };
                let Some(lambda) = s.lu().solve(&rhs) else { break };
                let disp = c * lambda;
                mb.apply_displacements(disp.as_slice());
                touched = true;
            }
            // velocities into a limit the DoF sits on
            let v = mb.generalized_velocity().clone_owned();
            let into: Vec<(usize, Real)> = mine
                .iter()
                .filter_map(|(_, d, [lo, hi])| {
                    let q = q_of(mb, d);
                    let vi = v[d.index];
                    let tol = 1e-6 * (1.0 + hi.abs().max(lo.abs()));
                    ((q >= hi - tol && vi > 0.0) || (q <= lo + tol && vi < 0.0)).then_some((d.index, -vi))
                })
                .collect();
            if !into.is_empty() {
                let set: Vec<usize> = into.iter().map(|o| o.0).collect();
                if let Some((c, s)) = solve(mb, &set) {
                    if let Some(mu) = s.lu().solve(&DVector::from_iterator(into.len(), into.iter().map(|o| o.1))) {
                        let dv = c * mu;
                        let mut gv = mb.generalized_velocity_mut();
                        gv += dv;
                        touched = true;
                    }
                }
            }
            if touched {
                mb.forward_kinematics(&self.world.bodies, false);
                mb.update_rigid_bodies(&mut self.world.bodies, true);
            }
        }
    }

    /// Capsules of [`MjcfModel::capsules`] in world coordinates: (end, end, radius).
    pub fn capsules(&self, model: &MjcfModel) -> Vec<([f64; 3], [f64; 3], f64)> {
        model
            .capsules
            .iter()
            .map(|(b, a, e, r)| {
                let pose = self.body_pose(*b);
                let w = |v: &[f64; 3]| {
                    let p = pose.transform_point(Vector::new(v[0] as Real, v[1] as Real, v[2] as Real));
                    [p.x as f64, p.y as f64, p.z as f64]
                };
                (w(a), w(e), *r)
            })
            .collect()
    }

    /// World pose of body `i` (its MJCF body frame).
    pub fn body_pose(&self, i: usize) -> Pose {
        *self.world.bodies[self.bodies[i]].position() * self.body_offsets[i]
    }
}

/// The DoF indices of each multibody (the tree hanging from one root body), in the order the
/// DoFs first name it.
fn trees(dofs: &[Dof]) -> Vec<Vec<usize>> {
    let mut roots: Vec<RigidBodyHandle> = Vec::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (k, d) in dofs.iter().enumerate() {
        match roots.iter().position(|r| *r == d.root) {
            Some(i) => out[i].push(k),
            None => {
                roots.push(d.root);
                out.push(vec![k]);
            }
        }
    }
    out
}

/// Switches Rapier's limit of the DoF `d` on or off (its range is kept).
fn set_limit_axis(world: &mut PhysicsWorld, d: &Dof, enabled: bool) {
    let (mb, _) = world.multibody_joints.get_mut(d.handle).expect("multibody");
    let link = mb.link_mut(d.link).expect("link");
    link.joint.data.limit_axes.set(JointAxesMask::from_bits_truncate(1 << d.coord), enabled);
}

/// COM velocity and angular velocity (world frame) of every link of `mb`, from its current
/// generalised velocities and poses. (Rapier refreshes the bodies' own velocities only at the
/// start of its next step, so after a step they lag by one step: using them for the fluid forces
/// measurably raised the Swimmer's error against MuJoCo.)
fn link_velocities(mb: &Multibody, bodies: &RigidBodySet) -> Vec<(Vector, Vector)> {
    let v: Vec<Real> = mb.generalized_velocity().iter().copied().collect();
    let mut out: Vec<(Vector, Vector)> = Vec::with_capacity(mb.num_links());
    for link in mb.links() {
        let jv = link.joint().jacobian_mul_coordinates(&v[link.assembly_id()..]);
        let Some(p) = link.parent_id() else {
            out.push((jv.linvel, jv.angvel));
            continue;
        };
        let parent = mb.link(p).expect("parent link");
        let jv = jv.transformed(&(parent.local_to_world().rotation * link.joint().data.local_frame1.rotation));
        let com = bodies[link.rigid_body_handle()].mass_properties().world_com;
        let parent_com = bodies[parent.rigid_body_handle()].mass_properties().world_com;
        let anchor = link.local_to_world().transform_point(link.joint().data.local_frame2.translation);
        let (pl, pa) = out[p];
        out.push((pl + jv.linvel + pa.cross(com - parent_com) + jv.angvel.cross(com - anchor), pa + jv.angvel));
    }
    out
}

/// Generalised forces (one per DoF) of the actuators for `ctrl` (one per actuator):
/// `gear · clip(ctrl, ctrlrange)`, summed per joint.
pub fn actuator_forces(model: &MjcfModel, ctrl: &[f64]) -> Vec<f64> {
    let mut tau = vec![0.0; model.joints.len()];
    for (a, c) in model.actuators.iter().zip(ctrl) {
        let c = match a.ctrl_range {
            Some([lo, hi]) => c.clamp(lo, hi),
            None => *c,
        };
        tau[a.joint] += a.gear * c;
    }
    tau
}

#[cfg(test)]
mod tests {
    use super::{impedance, MjcfModel, MjcfWorld, RapierSettings};

    #[test]
    fn mujocos_euler_step_is_refused_where_it_would_be_wrong() {
        let settings = |solver_iterations| RapierSettings {
            timestep: 0.01,
            substeps: 1,
            solver_iterations,
            limit_natural_frequency: 10.0,
            limit_damping_ratio: 1.0,
            limit_projection: false,
            contact: None,
        };
        let cheetah = MjcfModel::load("half_cheetah.xml").unwrap();
        assert!(MjcfWorld::build(&cheetah, &settings(1)).set_euler_integrator(true).is_ok());
        let e = MjcfWorld::build(&cheetah, &settings(4)).set_euler_integrator(true).unwrap_err();
        assert!(e.contains("solver_iterations = 1") && e.contains("got 4"), "{e}");
        // the fluid's forces are not in MuJoCo's Euler forces here, so a model with them is refused
        let swimmer = MjcfModel::load("swimmer.xml").unwrap();
        let e = MjcfWorld::build(&swimmer, &settings(1)).set_euler_integrator(true).unwrap_err();
        assert!(e.contains("fluid"), "{e}");
        assert!(MjcfWorld::build(&swimmer, &settings(1)).set_euler_integrator(false).is_ok());
    }

    #[test]
    fn impedance_is_mujocos_sigmoid() {
        let s = [0.9, 0.95, 0.001, 0.5, 2.0];
        assert_eq!(impedance(0.0, s), 0.9);
        assert!((impedance(0.0005, s) - 0.925).abs() < 1e-12, "the midpoint is halfway");
        assert!((impedance(0.00025, s) - (0.9 + 0.05 * 0.125)).abs() < 1e-12, "x^p / mid^(p-1) below it");
        assert!((impedance(0.00075, s) - (0.9 + 0.05 * 0.875)).abs() < 1e-12, "mirrored above it");
        assert_eq!(impedance(0.5, s), 0.95);
        assert_eq!(impedance(1.0, [0.0, 0.8, 0.03, 0.5, 2.0]), 0.8);
        assert!(impedance(0.0, [0.9, 0.95, 0.001, 0.0, 2.0]).is_finite(), "a midpoint of 0 is clamped");
    }
}
