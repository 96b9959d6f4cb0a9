//! Models from MJCF files: Gymnasium 1.4.0's own XML files (copied unchanged into
//! `tests/data/gymnasium` by `scripts/refresh_gymnasium_xml.sh`) load as they are and give the same
//! model as the files this crate ships; user files work through `xml_file`; unsupported MJCF is
//! refused with an error naming the element.

use std::path::PathBuf;

use rebel_envs::mjcf::{JointKind, MjcfModel, MjcfWorld, RapierSettings};
use rebel_envs::swimmer::Swimmer;
use rebel_envs::{make, ConfigValue, Env, EnvConfig, EnvError};

fn data(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel).display().to_string()
}

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel).display().to_string()
}

fn settings(m: &MjcfModel) -> RapierSettings {
    RapierSettings {
        timestep: m.timestep,
        substeps: 1,
        solver_iterations: 4,
        limit_natural_frequency: 1e6,
        limit_damping_ratio: 1.0,
        limit_projection: false,
        contact: None,
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
}

#[test]
fn gymnasium_files_give_the_shipped_models() {
    for name in ["swimmer.xml", "reacher.xml", "inverted_pendulum.xml", "inverted_double_pendulum.xml"] {
        let ours = MjcfModel::load(name).unwrap();
        let gym = MjcfModel::load(&data(&format!("gymnasium/{name}"))).unwrap();
        assert_eq!(
            (gym.timestep, gym.gravity, gym.density, gym.viscosity),
            (ours.timestep, ours.gravity, ours.density, ours.viscosity),
            "{name}: options"
        );
        // bodies by name, with their masses
        for b in &ours.bodies {
            let g = gym.body(&b.name).unwrap_or_else(|| panic!("{name}: body {} missing", b.name));
            assert!(
                close(gym.bodies[g].mass, b.mass, 1e-6),
                "{name}: mass of {}: {} vs {}",
                b.name,
                gym.bodies[g].mass,
                b.mass
            );
        }
        assert_eq!(gym.bodies.len(), ours.bodies.len(), "{name}: body count");
        // joints: same order, kinds, ranges, armature, damping, ref
        let js = |m: &MjcfModel| {
            m.joints
                .iter()
                .map(|j| (j.name.clone(), j.kind, j.range, j.armature, j.damping, j.reference))
                .collect::<Vec<_>>()
        };
        let (jg, jo) = (js(&gym), js(&ours));
        assert_eq!(jg.len(), jo.len(), "{name}");
        for (g, o) in jg.iter().zip(&jo) {
            assert_eq!((&g.0, g.1), (&o.0, o.1), "{name}");
            assert_eq!(g.2.is_some(), o.2.is_some(), "{name}: {} limited", g.0);
            if let (Some(a), Some(b)) = (g.2, o.2) {
                assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6, "{name}: range of {}", g.0);
            }
            assert_eq!((g.3, g.4), (o.3, o.4), "{name}: armature, damping of {}", g.0);
            assert!((g.5 - o.5).abs() < 1e-6, "{name}: ref of {}", g.0);
        }
        let acts = |m: &MjcfModel| m.actuators.iter().map(|a| (a.joint, a.gear, a.ctrl_range)).collect::<Vec<_>>();
        assert_eq!(acts(&gym), acts(&ours), "{name}: actuators");
        // and the same joint-space mass matrix away from the rest pose
        let q: Vec<f64> =
            (0..ours.nq()).map(|i| 0.1 * (i as f64 + 1.0) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let mut wg = MjcfWorld::build(&gym, &settings(&gym));
        let mut wo = MjcfWorld::build(&ours, &settings(&ours));
        let q_g: Vec<f64> = q.iter().zip(&gym.joints).map(|(q, j)| q + j.reference).collect();
        wg.set_state(&q_g, &vec![0.0; q.len()]);
        wo.set_state(&q_g, &vec![0.0; q.len()]);
        let (mg, mo) = (wg.mass_matrix().unwrap(), wo.mass_matrix().unwrap());
        for (rg, ro) in mg.iter().zip(&mo) {
            for (a, b) in rg.iter().zip(ro) {
                assert!((a - b).abs() < 1e-4 * (1.0 + a.abs()), "{name}: M {a} vs {b}");
            }
        }
    }
}

#[test]
fn the_swimmer_from_gymnasiums_file_swims_like_the_shipped_one() {
    let gym = EnvConfig::new().with("xml_file", ConfigValue::Str(data("gymnasium/swimmer.xml")));
    let (mut a, mut b) = (make("Swimmer-v5", &EnvConfig::new()).unwrap(), make("Swimmer-v5", &gym).unwrap());
    let (oa, _) = a.reset(Some(3)).unwrap();
    let (ob, _) = b.reset(Some(3)).unwrap();
    assert_eq!(oa, ob);
    let (mut ra, mut rb) = (0.0, 0.0);
    for k in 0..200 {
        let t = k as f32 * 0.04;
        let act = [(2.0 * t).sin(), (2.0 * t - 0.5).sin()];
        ra += a.step(&act).unwrap().reward;
        rb += b.step(&act).unwrap().reward;
    }
    assert!((ra - rb).abs() < 1e-3 * (1.0 + ra.abs()), "{ra} vs {rb}");
    assert!(ra > 1.0, "a travelling wave swims forward: {ra}");
}

#[test]
fn four_segment_swimmer_matches_mujocos_mass_matrix_and_swims() {
    let path = repo("experiments/swimmer4.xml");
    let m = MjcfModel::load(&path).unwrap();
    assert_eq!((m.nq(), m.nu()), (6, 3));
    assert!(m.joints[3..].iter().all(|j| j.kind == JointKind::Hinge && j.range.is_some()));
    // mj_fullM of MuJoCo 3.x/4.0 at qpos = (0.1, -0.2, 0.3, 0.4, -0.5, 0.6), armature included
    #[rustfmt::skip]
    let mj = [
        [142.5188669627, 0.0, 54.4191656416, 80.7239487650, 23.3809780814, 12.7706302093],
        [0.0, 142.5188669627, -47.7892727110, -132.8254854294, -64.7455118554, -12.4030225188],
        [54.4191656416, -47.7892727110, 219.3985331352, 228.4470082690, 120.8289357746, 37.4135667137],
        [80.7239487650, -132.8254854294, 228.4470082690, 303.9213037380, 155.2105865032, 45.2250863469],
        [23.3809780814, -64.7455118554, 120.8289357746, 155.2105865032, 90.7280479739, 27.5116656166],
        [12.7706302093, -12.4030225188, 37.4135667137, 45.2250863469, 27.5116656166, 12.9187452242],
    ];
    let mut w = MjcfWorld::build(&m, &settings(&m));
    w.set_state(&[0.1, -0.2, 0.3, 0.4, -0.5, 0.6], &[0.0; 6]);
    let mm = w.mass_matrix().unwrap();
    for i in 0..6 {
        for j in 0..6 {
            assert!((mm[i][j] - mj[i][j]).abs() < 3e-3, "M[{i}][{j}] = {} vs MuJoCo {}", mm[i][j], mj[i][j]);
        }
    }
    let cfg = EnvConfig::new().with("xml_file", ConfigValue::Str(path));
    let mut env = Swimmer::new(&cfg).unwrap();
    assert_eq!((env.observation_space().dim(), env.action_space().dim()), (10, 3));
    env.reset(Some(0)).unwrap();
    let mut ret = 0.0;
    for k in 0..250 {
        let t = k as f32 * 0.04;
        ret += env.step(&[(2.0 * t).sin(), (2.0 * t - 0.8).sin(), (2.0 * t - 1.6).sin()]).unwrap().reward;
    }
    assert!(ret > 1.0, "a travelling wave moves the four-segment swimmer forward: {ret}");
}

#[test]
fn limit_solver_parameters_come_from_the_top_level_joint_default() {
    let cheetah = MjcfModel::load("half_cheetah.xml").unwrap();
    assert_eq!((cheetah.limit_solref, cheetah.limit_solimp), ([0.02, 1.0], [0.0, 0.8, 0.03, 0.5, 2.0]));
    // none given: MuJoCo's defaults
    let ant = MjcfModel::load("ant.xml").unwrap();
    assert_eq!((ant.limit_solref, ant.limit_solimp), ([0.02, 1.0], [0.9, 0.95, 0.001, 0.5, 2.0]));
}

fn write(dir: &tempfile::TempDir, body: &str) -> String {
    let p = dir.path().join("m.xml");
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn load_err(dir: &tempfile::TempDir, body: &str) -> String {
    match MjcfModel::load(&write(dir, body)) {
        Err(e @ EnvError::BadOption { .. }) => e.to_string(),
        other => panic!("expected a clear error, got {other:?}"),
    }
}

#[test]
fn unsupported_mjcf_is_refused_naming_the_element() {
    let d = tempfile::tempdir().unwrap();
    let body = |inner: &str, extra: &str| {
        format!("<mujoco><worldbody><body name=\"b\"><geom type=\"sphere\" size=\"0.1\"/>{inner}</body></worldbody>{extra}</mujoco>")
    };
    // a free joint: only on a body directly under <worldbody>, without passive forces
    let e = load_err(&d, &body("<body name=\"c\"><geom type=\"sphere\" size=\"0.1\"/><freejoint/></body>", ""));
    assert!(e.contains("<freejoint>") && e.contains("line 1") && e.contains("directly under <worldbody>"), "{e}");
    let e = load_err(&d, &body("<joint type=\"free\" damping=\"2\"/>", ""));
    assert!(e.contains("damping=\"2\" on a free joint") && e.contains("set it to 0"), "{e}");
    let free = MjcfModel::load(&write(&d, &body("<freejoint/>", ""))).unwrap();
    assert_eq!((free.free_root, free.nq(), free.nv()), (Some(0), 7, 6));
    let cfg = EnvConfig::new().with("xml_file", ConfigValue::Str(write(&d, &body("<freejoint/>", ""))));
    let e = make("Swimmer-v5", &cfg).err().unwrap().to_string();
    assert!(e.contains("has a free-floating root"), "{e}");
    let e = load_err(&d, &body("<joint type=\"ball\"/>", ""));
    assert!(e.contains("<joint>") && e.contains("ball") && e.contains("hinge or slide"), "{e}");
    let e = load_err(&d, &body("<joint name=\"j\" type=\"hinge\" frictionloss=\"10\"/>", ""));
    assert!(e.contains("frictionloss") && e.contains("remove it"), "{e}");
    let e = load_err(&d, &body("<geom type=\"sphere\" size=\"0.1\" condim=\"6\"/>", ""));
    assert!(e.contains("condim=\"6\"") && e.contains("condim 3") && e.contains("rolling"), "{e}");
    let e = load_err(&d, &body("", "<contact><exclude body1=\"b\" body2=\"b\"/></contact>"));
    assert!(e.contains("<exclude>") && e.contains("contype/conaffinity"), "{e}");
    let e = load_err(&d, &body("<joint name=\"j\"/>", "<actuator><position joint=\"j\" kp=\"10\"/></actuator>"));
    assert!(e.contains("<position>") && e.contains("<motor"), "{e}");
    let e = load_err(
        &d,
        &body("<joint name=\"j\"/><site name=\"s\"/>", "<tendon><spatial><site site=\"s\"/></spatial></tendon>"),
    );
    assert!(e.contains("<spatial>") && e.contains("tendon"), "{e}");
    // a fixed tendon that would pull (stiffness, damping, a range, in a default too) is refused; one
    // that exerts nothing (Gymnasium's humanoid.xml has two) loads
    let fixed = |attrs: &str| format!("<tendon><fixed name=\"t\" {attrs}><joint joint=\"j\" coef=\"1\"/></fixed></tendon>");
    let e = load_err(&d, &body("<joint name=\"j\"/>", &fixed("stiffness=\"5\"")));
    assert!(e.contains("<fixed>") && e.contains("stiffness=\"5\"") && e.contains("not simulated"), "{e}");
    let e = load_err(&d, &body("<joint name=\"j\"/>", &fixed("limited=\"true\" range=\"0 1\"")));
    assert!(e.contains("range=\"0 1\""), "{e}");
    let e = load_err(&d, &format!("<mujoco><default><tendon damping=\"1\"/></default>{}", &body("<joint name=\"j\"/>", "")[8..]));
    assert!(e.contains("<tendon>") && e.contains("damping=\"1\""), "{e}");
    assert!(MjcfModel::load(&write(&d, &body("<joint name=\"j\"/>", &fixed("")))).is_ok());
    let e = load_err(&d, "<robot/>");
    assert!(e.contains("<mujoco>"), "{e}");
    let e = load_err(&d, "<mujoco><worldbody>");
    assert!(e.contains("not valid XML"), "{e}");
    // a missing file names the path and the shipped models
    let e = MjcfModel::load("/nonexistent/model.xml").unwrap_err().to_string();
    assert!(e.contains("/nonexistent/model.xml") && e.contains("swimmer.xml"), "{e}");
    // a model of the wrong shape for the environment
    let cfg = EnvConfig::new().with("xml_file", ConfigValue::Str("swimmer.xml".into()));
    let e = make("InvertedPendulum-v5", &cfg).err().unwrap().to_string();
    assert!(e.contains("InvertedPendulum-v5 needs 2 joints and 1 actuators"), "{e}");
    // looks only (assets, lights, cameras) load fine: the Gymnasium swimmer has all of them
    assert!(MjcfModel::load(&data("gymnasium/swimmer.xml")).is_ok());
}

/// The values of the first row of `tests/data/mujoco/NAME.csv` (written by `scripts/record_mujoco_rollouts.py`).
fn mujoco_rows(name: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(data(&format!("mujoco/{name}.csv"))).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(|x| x.parse().unwrap()).collect()).collect()
}

/// Gymnasium's humanoid.xml, unchanged: a floating base whose centre of mass is 3.5 cm off its body frame
/// (the loader puts the rigid body at the centre of mass, `mjcf::recentre_on_com`), hips and shoulders of two
/// or three hinges in one body (chains of massless links), two fixed tendons that exert nothing.
fn humanoid() -> (MjcfModel, MjcfWorld) {
    let m = MjcfModel::load(&data("gymnasium/humanoid.xml")).unwrap();
    assert_eq!((m.nq(), m.nv(), m.nu(), m.free_root), (24, 23, 17, Some(0)));
    let w = MjcfWorld::build(&m, &settings(&m));
    (m, w)
}

#[test]
fn gymnasiums_humanoid_has_mujocos_mass_matrix() {
    let (m, mut w) = humanoid();
    let row = &mujoco_rows("humanoid_v5_fullM_pose")[0];
    let (qpos, full) = row.split_at(24);
    w.set_state(qpos, &[0.0; 23]);
    let back = w.qpos();
    assert!(back.iter().zip(qpos).all(|(a, b)| (a - b).abs() < 1e-6), "qpos round trip: {back:?}");
    let mm = w.mass_matrix().unwrap();
    let worst = (0..23 * 23).map(|k| (mm[k / 23][k % 23] - full[k]).abs()).fold(0.0, f64::max);
    eprintln!("Humanoid mass matrix: max |ours − mj_fullM| = {worst:.2e} (largest entry {:.3})", full[0]);
    for i in 0..23 {
        for j in 0..23 {
            let mj = full[23 * i + j];
            // f32 geometry: entries up to 42.1 (the total mass) agree to 3.1e-4
            assert!((mm[i][j] - mj).abs() < 5e-4, "M[{i}][{j}] = {} vs MuJoCo {mj}", mm[i][j]);
        }
    }
    // velocities of the base's body frame origin round-trip through the centre of mass's
    let qvel: Vec<f64> = (0..23).map(|i| ((i as f64) * 0.37).sin()).collect();
    w.set_state(qpos, &qvel);
    assert!(w.qvel().iter().zip(&qvel).all(|(a, b)| (a - b).abs() < 1e-5), "{:?}", w.qvel());
    assert_eq!(m.joints[3].name, "right_hip_x");
}

#[test]
fn a_tumbling_humanoid_in_the_air_follows_mujoco() {
    // MuJoCo's RK4 at the model's 0.003 s; ours one Rapier step per MuJoCo step, MuJoCo's soft limits (the
    // knees start 2° past their range). Measured: the base's position off by 1.4e-4, 7.3e-4, 1.4e-3 m after
    // 10, 50, 100 steps (2.6e-3 and 8.5e-3 m after 50 and 100 before the base's rigid body was put at its
    // centre of mass); orientation 4e-4 and the joints 7.6e-3 rad after 50 (6.4e-3 and 6.8e-2 before bodies
    // hanging from their parent through massless links stopped touching it: thighs pushed out of the pelvis).
    let (m, mut w) = humanoid();
    w.set_mujoco_limits(&m, m.timestep);
    let rows = mujoco_rows("humanoid_v5_flight");
    w.reset_state(&rows[0][1..25], &rows[0][25..48]);
    let mut step = 0;
    for (row, tol) in [(&rows[1], [3e-4, 3e-4, 1e-2]), (&rows[2], [1.5e-3, 1.5e-3, 2e-2]), (&rows[3], [3e-3, 2e-3, 2e-2])] {
        while step < row[0] as usize {
            w.step(&[0.0; 23]);
            step += 1;
        }
        let (q, mj) = (w.qpos(), &row[1..25]);
        let err = |r: std::ops::Range<usize>| r.map(|i| (q[i] - mj[i]).abs()).fold(0.0, f64::max);
        let errs = [err(0..3), err(3..7), err(7..24)];
        eprintln!("step {step}: max |error| base position {:.2e} m, orientation {:.2e}, joints {:.2e} rad", errs[0], errs[1], errs[2]);
        assert!(errs.iter().zip(tol).all(|(e, t)| *e < t), "step {step}: base, orientation, joints off by {errs:?} (tolerances {tol:?})\nours   {q:?}\nMuJoCo {mj:?}");
    }
}

#[test]
fn a_body_does_not_touch_its_parent_through_a_chain_of_hinges() {
    // The child's two hinges (different axes, one anchor) make a massless link between it and the parent;
    // MuJoCo never lets a body touch its parent, whatever the joints. Their capsules overlap from the start:
    // the motion is the same as with the child's geom touching nothing.
    let xml = |child_geom: &str| {
        format!(
            r#"<mujoco><option gravity="0 0 0"/><worldbody>
        <body name="p"><joint name="s" type="slide" axis="1 0 0"/><geom type="capsule" fromto="0 -.2 0 0 .2 0" size="0.1"/>
          <body name="c" pos="0 0 -0.1"><joint name="a" axis="1 0 0" armature="0.01"/><joint name="b" axis="0 1 0" armature="0.01"/>
            <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.08" {child_geom}/></body></body></worldbody></mujoco>"#
        )
    };
    let d = tempfile::tempdir().unwrap();
    let run = |child_geom: &str| {
        let m = MjcfModel::load(&write(&d, &xml(child_geom))).unwrap();
        let mut w = MjcfWorld::build(&m, &settings(&m));
        w.reset_state(&[0.0; 3], &[0.0, 0.5, -0.5]);
        for _ in 0..20 {
            w.step(&[0.0; 3]);
        }
        (w.contact_count(), w.qpos(), w.qvel())
    };
    let (touching, q, v) = run("");
    let (_, q_alone, v_alone) = run(r#"contype="0" conaffinity="0""#);
    assert_eq!(touching, 0);
    // (the same to rounding: Rapier still tracks the filtered pair)
    let same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    assert!(same(&q, &q_alone) && same(&v, &v_alone), "{q:?} {v:?}\nalone: {q_alone:?} {v_alone:?}");
}

// ---- The loader's description made smaller (mjcf::simplify_robot), same dynamics ----

fn links_and_dofs(w: &MjcfWorld) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> =
        w.world.multibody_joints.multibodies().map(|mb| (mb.num_links(), mb.ndofs())).collect();
    v.sort_unstable();
    v
}

#[test]
fn joints_sharing_an_anchor_become_one_link_and_world_trees_separate_multibodies() {
    let sw = MjcfModel::load("swimmer.xml").unwrap();
    // world anchor + torso (slide x, slide y, hinge in one link) + mid + back
    assert_eq!(links_and_dofs(&MjcfWorld::build(&sw, &settings(&sw))), vec![(4, 5)]);
    let re = MjcfModel::load("reacher.xml").unwrap();
    // the arm (anchor, body0, body1 carrying the welded fingertip) and the target (anchor, two slides in one link)
    assert_eq!(links_and_dofs(&MjcfWorld::build(&re, &settings(&re))), vec![(2, 2), (3, 2)]);
}

/// One body on slide x, slide y and a hinge about z at `anchor` (body frame), its COM at `com`.
fn planar_body(joints: &str) -> String {
    format!(
        r#"<mujoco><option gravity="0 0 0"/><worldbody><body name="b">
             <inertial pos="0.5 0 0" mass="2" diaginertia="0.1 0.1 0.1"/>{joints}
             <geom type="sphere" size="0.1" pos="0.5 0 0" contype="0" conaffinity="0" mass="0"/>
           </body></worldbody></mujoco>"#
    )
}

#[test]
fn merged_planar_root_has_the_rigid_body_mass_matrix() {
    let d = tempfile::tempdir().unwrap();
    let xml = planar_body(
        r#"<joint type="slide" axis="1 0 0" pos="0.2 0 0"/><joint type="slide" axis="0 1 0" pos="0.2 0 0"/>
           <joint type="hinge" axis="0 0 1" pos="0.2 0 0"/>"#,
    );
    let m = MjcfModel::load(&write(&d, &xml)).unwrap();
    let mut w = MjcfWorld::build(&m, &settings(&m));
    assert_eq!(links_and_dofs(&w), vec![(2, 3)], "three joints at one anchor: one link");
    for th in [0.0f64, 0.5, -2.0] {
        w.reset_state(&[0.3, -0.1, th], &[0.0; 3]);
        // COM relative to the hinge: R(θ)·(0.3, 0)
        let (rx, ry) = (0.3 * th.cos(), 0.3 * th.sin());
        let want = [[2.0, 0.0, -2.0 * ry], [0.0, 2.0, 2.0 * rx], [-2.0 * ry, 2.0 * rx, 0.1 + 2.0 * 0.09]];
        let mm = w.mass_matrix().unwrap();
        for i in 0..3 {
            for j in 0..3 {
                assert!((mm[i][j] - want[i][j]).abs() < 1e-5, "θ = {th}: M[{i}][{j}] = {} vs {}", mm[i][j], want[i][j]);
            }
        }
        let q = w.qpos();
        assert!((q[0] - 0.3).abs() < 1e-6 && (q[1] + 0.1).abs() < 1e-6 && (q[2] - th).abs() < 1e-6, "{q:?}");
    }
}

#[test]
fn a_hinge_before_a_slide_stays_two_links_with_the_slide_turning() {
    let d = tempfile::tempdir().unwrap();
    // hinge then slide: the slide's axis turns with the hinge, so they do not commute and are
    // not merged; COM at the body origin for a simple closed form: M = diag(I + m s², m)
    let xml = r#"<mujoco><option gravity="0 0 0"/><worldbody><body name="b">
             <inertial pos="0 0 0" mass="2" diaginertia="0.1 0.1 0.1"/>
             <joint type="hinge" axis="0 0 1"/><joint type="slide" axis="1 0 0"/>
           </body></worldbody></mujoco>"#;
    let m = MjcfModel::load(&write(&d, xml)).unwrap();
    let mut w = MjcfWorld::build(&m, &settings(&m));
    assert_eq!(links_and_dofs(&w), vec![(3, 2)]);
    w.set_state(&[0.7, 0.4], &[0.0; 2]);
    let mm = w.mass_matrix().unwrap();
    let want = [[0.1 + 2.0 * 0.16, 0.0], [0.0, 2.0]];
    for i in 0..2 {
        for j in 0..2 {
            assert!((mm[i][j] - want[i][j]).abs() < 1e-5, "M[{i}][{j}] = {} vs {}", mm[i][j], want[i][j]);
        }
    }
}

#[test]
fn a_target_at_rest_sleeps_and_a_moving_one_still_moves() {
    let m = MjcfModel::load("reacher.xml").unwrap();
    let tau = [0.5, -0.5, 0.0, 0.0];
    let mut w = MjcfWorld::build(&m, &settings(&m));
    w.set_state(&[0.1, 0.2, 0.05, -0.1], &[0.0; 4]);
    for _ in 0..20 {
        w.step(&tau);
    }
    let q = w.qpos();
    assert!((q[2] - 0.05).abs() < 1e-7 && (q[3] + 0.1).abs() < 1e-7, "nothing moves the target: {q:?}");
    w.step(&tau);
    assert_eq!(w.qpos()[2..], q[2..], "not even by rounding");
    assert!(w.world.bodies.iter().any(|(_, b)| b.is_sleeping()), "the still target sleeps");
    assert!(q[0] != 0.1, "the arm moves");

    let mut w = MjcfWorld::build(&m, &settings(&m));
    w.set_state(&[0.1, 0.2, 0.05, -0.1], &[0.0, 0.0, 0.3, 0.0]);
    for _ in 0..20 {
        w.step(&tau);
    }
    let (q, v) = (w.qpos(), w.qvel());
    assert!(
        (q[2] - (0.05 + 0.3 * 20.0 * m.timestep)).abs() < 1e-4 && (v[2] - 0.3).abs() < 1e-5,
        "a moving target keeps its speed: {q:?} {v:?}"
    );
}

/// A joint spring is MuJoCo's explicit passive force `-stiffness · (q − springref)`: with one Rapier
/// substep per timestep the motion is the semi-implicit Euler recurrence of MuJoCo's Euler integrator.
#[test]
fn joint_springs_follow_mujocos_euler_recurrence() {
    let d = tempfile::tempdir().unwrap();
    let xml = "<mujoco><option gravity=\"0 0 0\" timestep=\"0.01\"/><worldbody><body name=\"b\">\
               <joint name=\"s\" type=\"slide\" axis=\"1 0 0\" stiffness=\"50\" springref=\"0.05\" armature=\"0.5\"/>\
               <geom type=\"sphere\" size=\"0.1\" mass=\"2\"/></body></worldbody></mujoco>";
    let m = MjcfModel::load(&write(&d, xml)).unwrap();
    assert_eq!((m.joints[0].stiffness, m.joints[0].springref), (50.0, 0.05_f32 as f64));
    let mut w = MjcfWorld::build(&m, &RapierSettings { solver_iterations: 1, ..settings(&m) });
    w.set_state(&[0.3], &[0.0]);
    let (mass, h, k, r) = (2.5, 0.01, 50.0, m.joints[0].springref);
    let (mut q, mut v) = (0.3_f64, 0.0_f64);
    for step in 0..300 {
        w.step(&[0.0]);
        v += h * (-k * (q - r)) / mass;
        q += h * v;
        let got = w.qpos()[0];
        assert!((got - q).abs() < 1e-4, "step {step}: q = {got}, recurrence {q}");
    }
    // it oscillates about springref (period 2π·sqrt(2.5/50) ≈ 1.4 s: 300 steps are two periods)
    assert!(w.qpos()[0] < 0.3 && w.qpos()[0] > -0.2);
}

/// Contacts follow MuJoCo's contype/conaffinity rule: a geom with conaffinity 0 rests on a floor
/// with conaffinity 1 (contype₁ & conaffinity₂), and two such geoms pass through each other.
#[test]
fn contact_filtering_is_mujocos_or_rule() {
    let d = tempfile::tempdir().unwrap();
    let xml = |ca: u32| {
        format!(
            "<mujoco><option timestep=\"0.01\"/><worldbody><geom name=\"floor\" type=\"plane\" size=\"5 5 1\" contype=\"1\" conaffinity=\"{ca}\"/>\
             <body name=\"b\" pos=\"0 0 0.5\"><joint name=\"z\" type=\"slide\" axis=\"0 0 1\"/>\
             <geom type=\"sphere\" size=\"0.1\" mass=\"1\" contype=\"1\" conaffinity=\"0\"/></body></worldbody></mujoco>"
        )
    };
    for (ca, rests) in [(1, true), (0, false)] {
        let m = MjcfModel::load(&write(&d, &xml(ca))).unwrap();
        let mut w = MjcfWorld::build(&m, &RapierSettings { contact: Some([30.0, 1.0]), ..settings(&m) });
        for _ in 0..200 {
            w.step(&[0.0]);
        }
        let z = 0.5 + w.qpos()[0];
        if rests {
            assert!((z - 0.1).abs() < 0.01, "floor conaffinity 1: the ball rests on it, z = {z}");
            assert!(w.contact_count() > 0);
        } else {
            assert!(z < -1.0, "floor conaffinity 0 and ball conaffinity 0: no contact, it falls through, z = {z}");
            assert_eq!(w.contact_count(), 0);
        }
    }
}

/// Friction reaches links on hinges: a planar body (slides x, z and a hinge on the world) carrying a
/// box on a hinge, pushed at 2 m/s on a floor with μ = 0.4, stops as Coulomb friction says (μg =
/// 3.92 m/s²: about 0.5 s), not after sliding on (Rapier 0.36.1 alone keeps 2 m/s, see
/// `examples/friction_probe.rs`). The root's freed y axis is not a DoF of the model.
#[test]
fn friction_acts_through_hinged_links() {
    let d = tempfile::tempdir().unwrap();
    let xml = "<mujoco><option timestep=\"0.01\"/><worldbody><geom name=\"floor\" type=\"plane\" size=\"5 5 1\" conaffinity=\"1\" friction=\"0.4\"/>\
        <body name=\"b\" pos=\"0 0 0.1\"><joint name=\"x\" type=\"slide\" axis=\"1 0 0\"/><joint name=\"z\" type=\"slide\" axis=\"0 0 1\"/>\
        <joint name=\"r\" type=\"hinge\" axis=\"0 1 0\"/><geom type=\"sphere\" size=\"0.3\" mass=\"5\" contype=\"0\" conaffinity=\"0\"/>\
        <body name=\"c\"><joint name=\"h\" type=\"hinge\" axis=\"0 1 0\"/><geom type=\"box\" size=\"0.1 0.1 0.1\" mass=\"1\" conaffinity=\"0\" friction=\"0.4\"/></body></body></worldbody></mujoco>";
    let m = MjcfModel::load(&write(&d, xml)).unwrap();
    let mut w = MjcfWorld::build(&m, &RapierSettings { solver_iterations: 1, contact: Some([15.0, 1.0]), ..settings(&m) });
    w.set_state(&[0.0; 4], &[2.0, 0.0, 0.0, 0.0]);
    let mut stopped_at = None;
    for k in 0..100 {
        w.step(&[0.0; 4]);
        assert_eq!((w.qpos().len(), w.qvel().len()), (4, 4));
        if stopped_at.is_none() && w.qvel()[0].abs() < 0.05 {
            stopped_at = Some(k);
        }
    }
    let k = stopped_at.expect("it never stopped: no friction");
    assert!((40..=62).contains(&k), "stopped after {k} steps of 0.01 s, Coulomb friction: about 51");
    assert!((w.qpos()[0] - 0.51).abs() < 0.1, "slid {} m, Coulomb friction: 2²/(2·3.92) = 0.51 m", w.qpos()[0]);
}

/// Our `qfrc_bias` (the Coriolis, centrifugal and gyroscopic forces the soft contacts' free acceleration
/// uses, plus gravity) against MuJoCo's at six random states per model (`*_bias.csv`, written by
/// `scripts/record_mujoco_rollouts.py`: joints up to 0.5 from rest, velocities N(0, 3); the first state at
/// rest, gravity alone). The tolerance, 2e-5 of the largest entry of the state's bias, is the f32 geometry's
/// (measured ≤ 3e-6); leaving the Coriolis terms out misses by 22 % of it at the HalfCheetah's first moving
/// state.
#[test]
fn bias_forces_are_mujocos_qfrc_bias() {
    use rebel_envs::ant::{Ant, AntConfig};
    use rebel_envs::humanoid::{Humanoid, HumanoidConfig};
    use rebel_envs::{half_cheetah, hopper, walker2d};

    fn check(name: &str, nq: usize, nv: usize, mut at: impl FnMut(&[f64], &[f64]) -> Vec<f64>) {
        let t = rebel_envs::csvio::read_table(std::path::Path::new(&data(&format!("mujoco/{name}_bias.csv")))).unwrap();
        assert_eq!(t.rows.len(), 6, "{name}");
        for (k, row) in t.rows.iter().enumerate() {
            let (qpos, rest) = row.split_at(nq);
            let (qvel, want) = rest.split_at(nv);
            let ours = at(qpos, qvel);
            let scale = want.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            let worst = ours.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            eprintln!("{name} state {k}: max |ours − MuJoCo| = {worst:.3e} of max |bias| {scale:.3e}");
            assert!(worst <= 2e-5 * scale, "{name} state {k}: ours {ours:?}\nMuJoCo {want:?}");
        }
    }
    for (spec, defaults, name) in [
        (half_cheetah::SPEC, half_cheetah::defaults(), "half_cheetah_v5"),
        (hopper::SPEC, hopper::defaults(), "hopper_v5"),
        (walker2d::SPEC, walker2d::defaults(), "walker2d_v5"),
    ] {
        let mut env = spec.build(defaults).unwrap();
        check(name, spec.nq, spec.nq, |q, v| {
            env.set_state(q, v).unwrap();
            env.bias_forces().unwrap()
        });
    }
    let mut ant = Ant::with_config(AntConfig::default()).unwrap();
    check("ant_v5", 15, 14, |q, v| {
        ant.set_state(q, v).unwrap();
        ant.bias_forces().unwrap()
    });
    let mut humanoid = Humanoid::with_config(HumanoidConfig::default()).unwrap();
    check("humanoid_v5", 24, 23, |q, v| {
        humanoid.set_state(q, v).unwrap();
        humanoid.bias_forces().unwrap()
    });
}

/// Our `qfrc_constraint` (MuJoCo's soft joint limits and floor contacts, solved jointly as one constraint
/// problem) against MuJoCo's at eight states per model with limits past their range, feet on the floor or both
/// (`*_constraint.csv`, written by `scripts/record_mujoco_rollouts.py`: a passive fall from the rest pose and
/// uniform random controls; states with contacts between body geoms, which stay Rapier's, are not recorded).
/// Measured: within 1.2e-5 of the largest entry on the Ant, the HalfCheetah, the Hopper and the Walker2d, 6e-4 on
/// the Humanoid; 1e-3 of it plus 0.01 N is allowed (f32 geometry, contacts at the edge of their margin).
/// Without the pyramid's edges along a capsule's axis (MuJoCo's contact frame) the Ant's contacts missed by 4–10 %;
/// with a welded foot's inverse weight taken at its carrier's centre of mass, the Humanoid's by 7–8 %.
#[test]
fn constraint_forces_are_mujocos_qfrc_constraint() {
    use rebel_envs::ant::{Ant, AntConfig};
    use rebel_envs::humanoid::{Humanoid, HumanoidConfig};
    use rebel_envs::{half_cheetah, hopper, walker2d};

    fn check(name: &str, nq: usize, nv: usize, nu: usize, mut at: impl FnMut(&[f64], &[f64], &[f64]) -> Vec<f64>) {
        let t = rebel_envs::csvio::read_table(std::path::Path::new(&data(&format!("mujoco/{name}_constraint.csv")))).unwrap();
        assert_eq!(t.rows.len(), 8, "{name}");
        for (k, row) in t.rows.iter().enumerate() {
            let (qpos, rest) = row.split_at(nq);
            let (qvel, rest) = rest.split_at(nv);
            let (ctrl, rest) = rest.split_at(nu);
            let want = &rest[..nv];
            let ours = at(qpos, qvel, ctrl);
            let scale = want.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
            let worst = ours.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            eprintln!("{name} state {k} (limits {}, contacts {}): max |ours − MuJoCo| = {worst:.3e} of max |qfrc_constraint| {scale:.3e}", rest[nv], rest[nv + 1]);
            assert!(worst <= 1e-3 * scale + 1e-2, "{name} state {k}: ours {ours:?}\nMuJoCo {want:?}");
        }
    }
    for (spec, defaults, name, nu) in [
        (half_cheetah::SPEC, half_cheetah::defaults(), "half_cheetah_v5", 6),
        (hopper::SPEC, hopper::defaults(), "hopper_v5", 3),
        (walker2d::SPEC, walker2d::defaults(), "walker2d_v5", 6),
    ] {
        let mut env = spec.build(defaults).unwrap();
        check(name, spec.nq, spec.nq, nu, |q, v, c| {
            env.set_state(q, v).unwrap();
            env.constraint_forces(c).unwrap()
        });
    }
    let mut ant = Ant::with_config(AntConfig::default()).unwrap();
    check("ant_v5", 15, 14, 8, |q, v, c| {
        ant.set_state(q, v).unwrap();
        ant.constraint_forces(c).unwrap()
    });
    let mut humanoid = Humanoid::with_config(HumanoidConfig::default()).unwrap();
    check("humanoid_v5", 24, 23, 17, |q, v, c| {
        humanoid.set_state(q, v).unwrap();
        humanoid.constraint_forces(c).unwrap()
    });
}
