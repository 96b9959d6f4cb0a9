//! The collectives across two real MPI ranks (`mpirun -np 2`). Built only with the `mpi` feature.
#![cfg(feature = "mpi")]

use std::process::Command;

/// `mpirun` with the flags CI needs (it runs as root on a 2-core machine).
pub fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string()]);
    c
}

#[test]
fn collectives_agree_across_two_mpi_ranks() {
    let out = mpirun(2)
        .arg(env!("CARGO_BIN_EXE_mpi-check"))
        .output()
        .expect("mpirun not found: install openmpi-bin (Debian) to run the MPI tests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mpirun failed: {}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("rank ")).collect();
    lines.sort();
    assert_eq!(lines, ["rank 0 of 2 ok", "rank 1 of 2 ok"]);
}

#[test]
fn a_binary_under_mpirun_sees_every_rank() {
    // One rank per process, each told its rank and the job's size by the launcher.
    let out = mpirun(2).args(["sh", "-c", "echo $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE"]).output().unwrap();
    let mut s: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    s.sort();
    assert_eq!(s, ["0/2", "1/2"]);
}
