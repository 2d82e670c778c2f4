//! The SFS server (work in progress).

fn main() {
    eprintln!("sfs-server: not implemented yet");
    std::process::exit(2);
}
