//! A Rapier 0.36.1 defect, reproduced with Rapier alone, and the workaround `MjcfWorld` uses.
//!
//!     cargo run --release -p rebel-envs --example friction_probe
//!
//! A planar multibody (root sliding in x and z on the world; a 1 kg box on a hinge about y at its
//! centre, 5 kg root) rests on the ground with μ = 0.4 and slides at 2 m/s. Coulomb friction stops it
//! in about 0.5 s (deceleration μg = 3.9 m/s²). With the hinge, it keeps sliding: in the friction
//! constraint along y, a direction no DoF can move, rounding leaves a Jacobian entry of about 6e-9
//! (the hinge axis is an f32 rotation of +x onto +y) where it should be 0, the effective mass
//! `1 / (J M⁻¹ Jᵀ)` becomes about 2e14, and that direction's impulse takes the whole friction cone
//! the two tangent directions share. Freeing the root's y (nothing pushes along it) gives the
//! direction a real effective mass, and friction is Coulomb's again.
//!
//! Prints the velocity after 0.4 s for: a fixed child (no hinge), the hinged child, and the hinged
//! child with the root's y free.

use rapier3d::prelude::*;

fn slide(hinge: bool, free_y: bool) -> f32 {
    let mut w = PhysicsWorld::new();
    w.integration_parameters.dt = 0.01;
    w.integration_parameters.num_solver_iterations = 1;
    w.gravity = Vector::new(0.0, 0.0, -9.81);
    let ground = w.bodies.insert(RigidBodyBuilder::fixed().build());
    let floor = ColliderBuilder::cuboid(10.0, 10.0, 0.5).translation(Vector::new(0.0, 0.0, -0.5)).friction(0.4);
    w.colliders.insert_with_parent(floor.build(), ground, &mut w.bodies);
    let anchor = w.bodies.insert(RigidBodyBuilder::fixed().build());
    let root = w.bodies.insert(RigidBodyBuilder::dynamic().translation(Vector::new(0.0, 0.0, 0.1)).build());
    let root_mass = ColliderBuilder::ball(0.3).density(0.0).mass(5.0).collision_groups(InteractionGroups::none());
    w.colliders.insert_with_parent(root_mass.build(), root, &mut w.bodies);
    let child = w.bodies.insert(RigidBodyBuilder::dynamic().translation(Vector::new(0.0, 0.0, 0.1)).build());
    w.colliders.insert_with_parent(ColliderBuilder::cuboid(0.1, 0.1, 0.1).mass(1.0).friction(0.4).build(), child, &mut w.bodies);
    let mut locked = JointAxesMask::ANG_X | JointAxesMask::ANG_Y | JointAxesMask::ANG_Z;
    if !free_y {
        locked |= JointAxesMask::LIN_Y;
    }
    let frame = Pose::from_translation(Vector::new(0.0, 0.0, 0.1));
    let root_joint = w.multibody_joints.insert(anchor, root, GenericJointBuilder::new(locked).local_frame1(frame).build(), true);
    let child_joint: GenericJoint =
        if hinge { RevoluteJointBuilder::new(Vector::Y).build().into() } else { FixedJointBuilder::new().build().into() };
    w.multibody_joints.insert(root, child, child_joint, true);
    w.step();
    let (mb, _) = w.multibody_joints.get_mut(root_joint.expect("joint")).expect("multibody");
    mb.generalized_velocity_mut()[0] = 2.0;
    for _ in 0..40 {
        w.step();
    }
    w.bodies[child].linvel().x
}

fn main() {
    println!("x velocity after 0.4 s, from 2 m/s (Coulomb friction: about 0.43 m/s):");
    println!("  child welded to the root:        {:.3}", slide(false, false));
    println!("  child on a hinge:                {:.3}   <- the defect", slide(true, false));
    println!("  child on a hinge, root y freed:  {:.3}   <- the workaround", slide(true, true));
}
