//! `nextcloud-sim`: serve a simulated Nextcloud until Ctrl-C.

use std::net::SocketAddr;

use clap::Parser;
use nextcloud_sim::{Server, SimOptions, Simulator};

#[derive(Parser)]
#[command(about = "A Nextcloud 32 simulator on loopback (WebDAV + OCS)")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// DAV user id.
    #[arg(long, default_value = "alice")]
    user: String,
    /// Login name for Basic auth (defaults to the user id).
    #[arg(long)]
    login: Option<String>,
    #[arg(long, default_value = "demo-app-password")]
    app_password: String,
    /// Serve everything below this path, e.g. /nextcloud.
    #[arg(long, default_value = "")]
    subpath: String,
    /// Fill the tree with the demo sample.
    #[arg(long)]
    sample: bool,
    /// Add a generated tree of N entries.
    #[arg(long, value_name = "N")]
    generate: Option<usize>,
    /// Seed for --generate.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Answer Depth: infinity PROPFINDs with 403.
    #[arg(long)]
    refuse_infinity: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = SimOptions {
        login: args.login.unwrap_or_else(|| args.user.clone()),
        user_id: args.user,
        app_password: args.app_password,
        subpath: args.subpath,
        refuse_depth_infinity: args.refuse_infinity,
        ..SimOptions::default()
    };
    let sim = Simulator::new(opts);
    if args.sample {
        sim.populate_sample();
    }
    if let Some(n) = args.generate {
        sim.generate(n, args.seed);
    }
    let server = Server::start_on(sim, SocketAddr::from(([127, 0, 0, 1], args.port)))?;
    println!("{}", server.base_url());
    let opts = server.simulator().options();
    eprintln!(
        "login {:?}, app password {:?}, DAV root {}/remote.php/dav/files/{}/",
        opts.login,
        opts.app_password,
        server.base_url(),
        opts.user_id
    );
    // The server runs on its own thread; SIGINT ends the process.
    loop {
        std::thread::park();
    }
}
