//! `warren`: the client of warrend, with incus's commands and output: set-up (`admin init`),
//! remotes (image servers), images, instances (`launch`, `list`, `exec`, ...), their config and
//! devices, networks, operations.
#![forbid(unsafe_code)]

mod admin_init;
mod client;
mod config;
mod config_cmds;
mod console_cmd;
mod exec_cmd;
mod file_cmds;
mod format;
mod image_cmds;
mod incus_remote;
mod instance_cmds;
mod monitor_cmd;
mod network_cmds;
mod operation_cmds;
mod profile_cmds;
mod project_cmds;
mod remote_cmds;
mod server_cmds;
mod snapshot_cmds;
mod storage_cmds;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use format::Format;

#[derive(Parser)]
#[command(
    name = "warren",
    version,
    about = "The warren client: instances, images and networks of warrend, with incus's commands",
    after_help = "warrend listens on $WARREN_DIR/unix.socket (/var/lib/warren); $WARREN_SOCKET overrides it.\nThe client's remotes live in $WARREN_CONF (~/.config/warren)."
)]
struct Cli {
    /// Show every request to warrend and its answer's status on stderr
    #[arg(long, global = true)]
    debug: bool,
    /// The project to work in (else the one `warren project switch` chose, or default)
    #[arg(long, global = true, value_name = "PROJECT")]
    project: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set-up and administration
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
    /// Image servers: list, add, remove, switch, get-default, set-url
    Remote {
        #[command(subcommand)]
        command: RemoteCmd,
    },
    /// Images: list, import, delete, info, alias, copy
    Image {
        #[command(subcommand)]
        command: ImageCmd,
    },
    /// Create and start an instance from an image ([REMOTE:]ALIAS or fingerprint)
    Launch(CreateArgs),
    /// Create an instance from an image without starting it
    #[command(alias = "init")]
    Create(CreateArgs),
    /// List instances (filters: a name prefix, status=running, KEY=VALUE of the config)
    #[command(alias = "ls")]
    List {
        /// Filters, or a remote (`local:`)
        args: Vec<String>,
        /// Columns: n name, s state, 4 IPv4, 6 IPv6, t type, S snapshots, d description,
        /// a architecture, c created, p pid, P profiles, N processes, e project, f base image,
        /// l last used, L location, m memory
        #[arg(short = 'c', long, default_value = "ns46tS")]
        columns: String,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
        /// The instances of every project (with a PROJECT column)
        #[arg(long)]
        all_projects: bool,
    },
    /// Show an instance: state, resources, network, snapshots
    Info { name: String },
    /// Start instances
    Start { names: Vec<String> },
    /// Stop instances (cleanly; --force kills)
    Stop {
        names: Vec<String>,
        #[arg(short, long)]
        force: bool,
        /// Seconds to wait for a clean stop
        #[arg(long, default_value_t = -1)]
        timeout: i64,
    },
    /// Restart instances
    Restart {
        names: Vec<String>,
        #[arg(short, long)]
        force: bool,
        #[arg(long, default_value_t = -1)]
        timeout: i64,
    },
    /// Freeze instances
    #[command(alias = "freeze")]
    Pause { names: Vec<String> },
    /// Thaw frozen instances
    #[command(alias = "unfreeze")]
    Resume { names: Vec<String> },
    /// Delete instances (--force stops running ones first)
    #[command(alias = "rm")]
    Delete {
        names: Vec<String>,
        #[arg(short, long)]
        force: bool,
    },
    /// Rename a stopped instance, or move it to another project (--target-project)
    #[command(alias = "move", alias = "mv")]
    Rename {
        from: String,
        /// The new name (the same one if left out, with --target-project)
        to: Option<String>,
        /// The project it goes to
        #[arg(long)]
        target_project: Option<String>,
    },
    /// Copy an instance (into another project with --target-project)
    #[command(alias = "cp")]
    Copy {
        from: String,
        to: String,
        /// The project the copy is made in
        #[arg(long)]
        target_project: Option<String>,
    },
    /// Run a command in an instance: warren exec NAME [--env K=V] [--cwd DIR] -- CMD [ARGS]
    Exec {
        name: String,
        /// Environment variables (KEY=VALUE)
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        #[arg(long)]
        cwd: Option<String>,
        #[arg(long, default_value_t = 0)]
        user: u32,
        #[arg(long, default_value_t = 0)]
        group: u32,
        /// A terminal, even when stdin or stdout isn't one
        #[arg(short = 't', long = "force-interactive", conflicts_with = "no_tty")]
        tty: bool,
        /// Separate stdin, stdout and stderr, even on a terminal
        #[arg(short = 'T', long = "force-noninteractive")]
        no_tty: bool,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Attach to an instance's console (ctrl-a q detaches), or --show-log
    Console {
        name: String,
        #[arg(long)]
        show_log: bool,
    },
    /// Snapshots of an instance: create, list, restore, delete
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCmd,
    },
    /// Profiles: list, show, create, delete, rename, set, unset, device, add, remove
    Profile {
        #[command(subcommand)]
        command: ProfileCmd,
    },
    /// Projects: their own instances, and as their features say profiles, images and volumes
    Project {
        #[command(subcommand)]
        command: ProjectCmd,
    },
    /// Storage pools and their volumes
    Storage {
        #[command(subcommand)]
        command: StorageCmd,
    },
    /// warrend's events as they happen
    Monitor {
        /// Only these types (operation, lifecycle, logging)
        #[arg(long = "type")]
        types: Vec<String>,
        #[arg(short = 'f', long, value_enum, default_value = "yaml")]
        format: Format,
    },
    /// Files in instances: push, pull, delete
    File {
        #[command(subcommand)]
        command: FileCmd,
    },
    /// An instance's config and devices
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// Networks: list, show, create, set, delete, list-leases
    Network {
        #[command(subcommand)]
        command: NetworkCmd,
    },
    /// Operations in progress or just done
    Operation {
        #[command(subcommand)]
        command: OperationCmd,
    },
    /// Client and server versions
    Version,
    /// Shell completions: warren completion bash > /etc/bash_completion.d/warren
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct CreateArgs {
    /// [REMOTE:]IMAGE (an alias, os/release[/variant], or a fingerprint)
    image: String,
    /// The instance's name (one is made up without)
    name: Option<String>,
    /// Config (KEY=VALUE)
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Profiles (default: "default")
    #[arg(short = 'p', long = "profile")]
    profiles: Vec<String>,
    /// A managed network for eth0
    #[arg(short = 'n', long)]
    network: Option<String>,
    /// Deleted when it stops
    #[arg(short = 'e', long)]
    ephemeral: bool,
}

#[derive(Subcommand)]
enum Admin {
    /// Set up a new warrend: a storage pool, a managed bridge, and the default profile's root
    /// disk and eth0 nic on them; asks unless --minimal or --preseed
    Init {
        /// Take the defaults without asking: a "default" dir pool and the bridge warrenbr0
        #[arg(long, conflicts_with = "preseed")]
        minimal: bool,
        /// With --minimal: the bridge's name, or "none" for no network
        #[arg(long, value_name = "NAME", default_value = admin_init::DEFAULT_BRIDGE)]
        network: String,
        /// Read Incus's preseed YAML (storage_pools, networks, profiles) from standard input
        #[arg(long)]
        preseed: bool,
    },
}

#[derive(Subcommand)]
enum RemoteCmd {
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Add an image server: a simplestreams one (URL), or another warrend or incusd (a trust
    /// token from `config trust add` on it, or its URL with --token)
    Add {
        name: String,
        /// https://HOST[:PORT], or a trust token
        url: String,
        /// simplestreams, or incus (another warrend or incusd: implied by a token)
        #[arg(long, default_value = "simplestreams")]
        protocol: String,
        /// Pin the server's certificate without asking
        #[arg(long)]
        accept_certificate: bool,
        /// A trust token from the server (`warren config trust add NAME` there)
        #[arg(long)]
        token: Option<String>,
    },
    #[command(alias = "rm")]
    Remove {
        name: String,
    },
    /// Make a remote the default (local is the only one holding instances)
    Switch {
        name: String,
    },
    GetDefault,
    /// Point a remote elsewhere (images: at your own image server, say)
    SetUrl {
        name: String,
        url: String,
        #[arg(long)]
        accept_certificate: bool,
    },
}

#[derive(Subcommand)]
enum ImageCmd {
    #[command(alias = "ls")]
    List {
        /// REMOTE: (default: the local images)
        remote: Option<String>,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Import a unified tarball, or metadata tarball + squashfs
    Import {
        #[arg(required = true, num_args = 1..=2)]
        files: Vec<String>,
        #[arg(long)]
        alias: Option<String>,
    },
    #[command(alias = "rm")]
    Delete {
        #[arg(required = true)]
        images: Vec<String>,
    },
    Info {
        image: String,
    },
    /// Write an image's file(s) into a directory (default: here)
    Export {
        image: String,
        target: Option<String>,
    },
    /// Copy an image from an image server: warren image copy REMOTE:IMAGE local: [--alias NAME]
    Copy {
        source: String,
        target: String,
        #[arg(long)]
        alias: Option<String>,
        /// Keep it up to date from the server
        #[arg(long)]
        auto_update: bool,
    },
    /// Bring images from servers up to date now
    Refresh {
        #[arg(required = true)]
        images: Vec<String>,
    },
    Alias {
        #[command(subcommand)]
        command: AliasCmd,
    },
}

#[derive(Subcommand)]
enum AliasCmd {
    Create {
        alias: String,
        target: String,
    },
    #[command(alias = "rm")]
    Delete {
        alias: String,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    Create {
        name: String,
        snapshot: Option<String>,
    },
    #[command(alias = "ls")]
    List {
        name: String,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    Restore {
        name: String,
        snapshot: String,
    },
    #[command(alias = "rm")]
    Delete {
        name: String,
        snapshot: String,
    },
}

#[derive(Subcommand)]
enum ProfileCmd {
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    Show {
        name: String,
    },
    Create {
        name: String,
    },
    #[command(alias = "rm")]
    Delete {
        name: String,
    },
    #[command(alias = "mv")]
    Rename {
        from: String,
        to: String,
    },
    Set {
        name: String,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    Unset {
        name: String,
        key: String,
    },
    Device {
        #[command(subcommand)]
        command: ProfileDeviceCmd,
    },
    /// Apply a profile to an instance
    Add {
        instance: String,
        profile: String,
    },
    /// Take a profile off an instance
    Remove {
        instance: String,
        profile: String,
    },
}

#[derive(Subcommand)]
enum ProjectCmd {
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One project, as YAML
    Show {
        name: String,
    },
    /// A new project (features.images, features.profiles, features.storage.volumes on unless
    /// `-c KEY=false`)
    Create {
        name: String,
        /// KEY=VALUE of its config (features.*, limits.instances, user.*)
        #[arg(short = 'c', long = "config")]
        config: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete an empty project
    #[command(alias = "rm")]
    Delete {
        name: String,
    },
    /// Rename an empty project
    #[command(alias = "mv")]
    Rename {
        from: String,
        to: String,
    },
    Get {
        name: String,
        key: String,
    },
    Set {
        name: String,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    Unset {
        name: String,
        key: String,
    },
    /// Edit its config and description (in $EDITOR, or YAML from stdin)
    Edit {
        name: String,
    },
    /// What its instances use against its limits
    Info {
        name: String,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Work in this project from now on
    Switch {
        name: String,
    },
    /// The project commands work in
    GetCurrent,
}

#[derive(Subcommand)]
enum ProfileDeviceCmd {
    Add {
        name: String,
        device: String,
        kind: String,
        pairs: Vec<String>,
    },
    #[command(alias = "rm")]
    Remove { name: String, device: String },
}

#[derive(Subcommand)]
enum StorageCmd {
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    Show {
        name: String,
    },
    /// warren storage create NAME dir [source=DIR]
    Create {
        name: String,
        driver: String,
        pairs: Vec<String>,
    },
    #[command(alias = "rm")]
    Delete {
        name: String,
    },
    Volume {
        #[command(subcommand)]
        command: VolumeCmd,
    },
}

#[derive(Subcommand)]
enum VolumeCmd {
    #[command(alias = "ls")]
    List {
        pool: String,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    Show {
        pool: String,
        name: String,
    },
    Create {
        pool: String,
        name: String,
        pairs: Vec<String>,
    },
    #[command(alias = "rm")]
    Delete {
        pool: String,
        name: String,
    },
    Rename {
        pool: String,
        from: String,
        to: String,
    },
    /// warren storage volume attach POOL VOLUME INSTANCE PATH
    Attach {
        pool: String,
        name: String,
        instance: String,
        path: String,
    },
    Detach {
        pool: String,
        name: String,
        instance: String,
    },
}

#[derive(Subcommand)]
enum FileCmd {
    /// warren file push LOCAL... INSTANCE/PATH
    Push {
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
        #[arg(short, long)]
        recursive: bool,
        /// Make the missing directories
        #[arg(short = 'p', long = "create-dirs")]
        parents: bool,
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long)]
        gid: Option<u32>,
        /// Octal mode of the files made
        #[arg(long)]
        mode: Option<String>,
    },
    /// warren file pull INSTANCE/PATH... LOCAL (- for stdout)
    Pull {
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
        #[arg(short, long)]
        recursive: bool,
    },
    #[command(alias = "rm")]
    Delete {
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Edit a file of an instance in $EDITOR
    Edit { target: String },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// An instance's config, or the server's (no NAME)
    Show {
        name: Option<String>,
        #[arg(short, long)]
        expanded: bool,
    },
    /// warren config get NAME KEY, or a server key: warren config get core.https_address
    Get { name: String, key: Option<String> },
    /// warren config set NAME KEY=VALUE... (or NAME KEY VALUE)
    Set {
        name: String,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// warren config unset NAME KEY, or a server key: warren config unset core.https_address
    Unset { name: String, key: Option<String> },
    /// Clients trusted over HTTPS: add (a token), list, list-tokens, revoke-token, remove
    Trust {
        #[command(subcommand)]
        command: TrustCmd,
    },
    /// Edit the instance's config, devices and profiles as YAML in $EDITOR
    Edit { name: String },
    Device {
        #[command(subcommand)]
        command: DeviceCmd,
    },
}

#[derive(Subcommand)]
enum TrustCmd {
    /// A trust token for client NAME (`warren remote add REMOTE TOKEN` or `incus remote add` there)
    Add {
        name: String,
        /// The client may work only in the projects of --projects, and change nothing global
        #[arg(long)]
        restricted: bool,
        /// The projects a restricted client may work in (comma-separated)
        #[arg(long, value_delimiter = ',', requires = "restricted")]
        projects: Vec<String>,
    },
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Tokens not used yet
    ListTokens {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Cancel client NAME's unused token
    RevokeToken { name: String },
    /// Stop trusting a certificate (by fingerprint, or its start)
    #[command(alias = "rm")]
    Remove { fingerprint: String },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// warren config device add NAME DEVICE TYPE KEY=VALUE...
    Add {
        name: String,
        device: String,
        kind: String,
        pairs: Vec<String>,
    },
    #[command(alias = "rm")]
    Remove {
        name: String,
        device: String,
    },
    #[command(alias = "ls")]
    List {
        name: String,
    },
    Show {
        name: String,
    },
}

#[derive(Subcommand)]
enum NetworkCmd {
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    Show {
        name: String,
    },
    /// A managed bridge: warren network create NAME [ipv4.address=auto] [KEY=VALUE...]
    Create {
        name: String,
        pairs: Vec<String>,
    },
    Set {
        name: String,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    #[command(alias = "rm")]
    Delete {
        name: String,
    },
    ListLeases {
        name: String,
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum OperationCmd {
    #[command(alias = "ls")]
    List {
        #[arg(short = 'f', long, value_enum, default_value = "table")]
        format: Format,
    },
    /// One operation, as YAML
    Show { id: String },
    /// Cancel an operation that can be cancelled (a console, a token)
    #[command(alias = "rm")]
    Delete { id: String },
}

fn run(cli: Cli) -> Result<i32> {
    if cli.debug {
        client::set_debug(true);
    }
    let mut cfg = config::Config::load()?;
    let project = cli.project.clone().unwrap_or_else(|| cfg.project());
    client::set_project(&project);
    match cli.command {
        Command::Admin {
            command:
                Admin::Init {
                    minimal,
                    network,
                    preseed,
                },
        } => {
            if preseed {
                admin_init::preseed()?
            } else if minimal {
                admin_init::minimal(&network)?
            } else {
                admin_init::interactive()?
            }
            Ok(0)
        }
        Command::Remote { command } => match command {
            RemoteCmd::List { format } => remote_cmds::list(&cfg, format),
            RemoteCmd::Add {
                name,
                url,
                protocol,
                accept_certificate,
                token,
            } => remote_cmds::add(
                &mut cfg,
                &name,
                &url,
                &protocol,
                accept_certificate,
                token.as_deref(),
            ),
            RemoteCmd::Remove { name } => remote_cmds::remove(&mut cfg, &name),
            RemoteCmd::Switch { name } => remote_cmds::switch(&mut cfg, &name),
            RemoteCmd::GetDefault => {
                println!("{}", cfg.default_remote);
                Ok(0)
            }
            RemoteCmd::SetUrl {
                name,
                url,
                accept_certificate,
            } => remote_cmds::set_url(&mut cfg, &name, &url, accept_certificate),
        },
        Command::Image { command } => match command {
            ImageCmd::List { remote, format } => image_cmds::list(&cfg, remote.as_deref(), format),
            ImageCmd::Import { files, alias } => image_cmds::import(&files, alias.as_deref()),
            ImageCmd::Delete { images } => image_cmds::delete(&images),
            ImageCmd::Info { image } => image_cmds::info(&image),
            ImageCmd::Export { image, target } => image_cmds::export(&image, target.as_deref()),
            ImageCmd::Copy {
                source,
                target,
                alias,
                auto_update,
            } => {
                if cfg.target(&target)?.0 != "local" {
                    bail!("Images are copied to local: only");
                }
                image_cmds::copy(&cfg, &source, alias.as_deref(), auto_update)
            }
            ImageCmd::Refresh { images } => image_cmds::refresh(&images),
            ImageCmd::Alias { command } => match command {
                AliasCmd::Create { alias, target } => image_cmds::alias_create(&alias, &target),
                AliasCmd::Delete { alias } => image_cmds::alias_delete(&alias),
            },
        },
        Command::Launch(a) | Command::Create(a) => {
            let start = matches!(std::env::args().nth(1).as_deref(), Some("launch"));
            instance_cmds::create(
                &cfg,
                instance_cmds::Create {
                    image: a.image,
                    name: a.name,
                    config: a.config,
                    profiles: a.profiles,
                    network: a.network,
                    ephemeral: a.ephemeral,
                    start,
                },
            )
        }
        Command::List {
            args,
            columns,
            format,
            all_projects,
        } => instance_cmds::list(&cfg, &args, &columns, format, all_projects),
        Command::Info { name } => instance_cmds::info(&cfg, &name),
        Command::Start { names } => instance_cmds::state(&cfg, "start", &names, false, 0),
        Command::Stop {
            names,
            force,
            timeout,
        } => instance_cmds::state(&cfg, "stop", &names, force, timeout),
        Command::Restart {
            names,
            force,
            timeout,
        } => instance_cmds::state(&cfg, "restart", &names, force, timeout),
        Command::Pause { names } => instance_cmds::state(&cfg, "freeze", &names, false, 0),
        Command::Resume { names } => instance_cmds::state(&cfg, "unfreeze", &names, false, 0),
        Command::Delete { names, force } => instance_cmds::delete(&cfg, &names, force),
        Command::Rename {
            from,
            to,
            target_project,
        } => instance_cmds::rename(&cfg, &from, to.as_deref(), target_project.as_deref()),
        Command::Copy {
            from,
            to,
            target_project,
        } => instance_cmds::copy(&cfg, &from, &to, &project, target_project.as_deref()),
        Command::Exec {
            name,
            env,
            cwd,
            user,
            group,
            tty,
            no_tty,
            command,
        } => exec_cmd::run(
            &cfg,
            exec_cmd::Exec {
                name,
                command,
                env,
                cwd,
                user,
                group,
                force_tty: tty,
                no_tty,
            },
        ),
        Command::Console { name, show_log } => console_cmd::run(&cfg, &name, show_log),
        Command::Snapshot { command } => match command {
            SnapshotCmd::Create { name, snapshot } => {
                snapshot_cmds::create(&cfg, &name, snapshot.as_deref())
            }
            SnapshotCmd::List { name, format } => snapshot_cmds::list(&cfg, &name, format),
            SnapshotCmd::Restore { name, snapshot } => {
                snapshot_cmds::restore(&cfg, &name, &snapshot)
            }
            SnapshotCmd::Delete { name, snapshot } => snapshot_cmds::delete(&cfg, &name, &snapshot),
        },
        Command::Project { command } => match command {
            ProjectCmd::List { format } => project_cmds::list(&cfg, format),
            ProjectCmd::Show { name } => project_cmds::show(&name),
            ProjectCmd::Create {
                name,
                config,
                description,
            } => project_cmds::create(&name, &config, &description),
            ProjectCmd::Delete { name } => project_cmds::delete(&mut cfg, &name),
            ProjectCmd::Rename { from, to } => project_cmds::rename(&mut cfg, &from, &to),
            ProjectCmd::Get { name, key } => project_cmds::get(&name, &key),
            ProjectCmd::Set { name, pairs } => project_cmds::set(&name, &pairs),
            ProjectCmd::Unset { name, key } => project_cmds::unset(&name, &key),
            ProjectCmd::Edit { name } => project_cmds::edit(&name),
            ProjectCmd::Info { name, format } => project_cmds::info(&name, format),
            ProjectCmd::Switch { name } => project_cmds::switch(&mut cfg, &name),
            ProjectCmd::GetCurrent => {
                println!("{project}");
                Ok(0)
            }
        },
        Command::Profile { command } => match command {
            ProfileCmd::List { format } => profile_cmds::list(format),
            ProfileCmd::Show { name } => profile_cmds::show(&name),
            ProfileCmd::Create { name } => profile_cmds::create(&name),
            ProfileCmd::Delete { name } => profile_cmds::delete(&name),
            ProfileCmd::Rename { from, to } => profile_cmds::rename(&from, &to),
            ProfileCmd::Set { name, pairs } => profile_cmds::set(&name, &pairs),
            ProfileCmd::Unset { name, key } => profile_cmds::unset(&name, &key),
            ProfileCmd::Device { command } => match command {
                ProfileDeviceCmd::Add {
                    name,
                    device,
                    kind,
                    pairs,
                } => profile_cmds::device_add(&name, &device, &kind, &pairs),
                ProfileDeviceCmd::Remove { name, device } => {
                    profile_cmds::device_remove(&name, &device)
                }
            },
            ProfileCmd::Add { instance, profile } => {
                profile_cmds::assign(&cfg, &instance, &profile, true)
            }
            ProfileCmd::Remove { instance, profile } => {
                profile_cmds::assign(&cfg, &instance, &profile, false)
            }
        },
        Command::Storage { command } => match command {
            StorageCmd::List { format } => storage_cmds::list(format),
            StorageCmd::Show { name } => storage_cmds::show(&name),
            StorageCmd::Create {
                name,
                driver,
                pairs,
            } => storage_cmds::create(&name, &driver, &pairs),
            StorageCmd::Delete { name } => storage_cmds::delete(&name),
            StorageCmd::Volume { command } => match command {
                VolumeCmd::List { pool, format } => storage_cmds::volume_list(&pool, format),
                VolumeCmd::Show { pool, name } => storage_cmds::volume_show(&pool, &name),
                VolumeCmd::Create { pool, name, pairs } => {
                    storage_cmds::volume_create(&pool, &name, &pairs)
                }
                VolumeCmd::Delete { pool, name } => storage_cmds::volume_delete(&pool, &name),
                VolumeCmd::Rename { pool, from, to } => {
                    storage_cmds::volume_rename(&pool, &from, &to)
                }
                VolumeCmd::Attach {
                    pool,
                    name,
                    instance,
                    path,
                } => storage_cmds::volume_attach(&cfg, &pool, &name, &instance, &path),
                VolumeCmd::Detach {
                    pool,
                    name,
                    instance,
                } => storage_cmds::volume_detach(&cfg, &pool, &name, &instance),
            },
        },
        Command::Monitor { types, format } => monitor_cmd::run(&types, format),
        Command::File { command } => match command {
            FileCmd::Push {
                mut paths,
                recursive,
                parents,
                uid,
                gid,
                mode,
            } => {
                let target = paths.pop().unwrap_or_default();
                file_cmds::push(
                    &cfg,
                    file_cmds::Push {
                        sources: paths,
                        target,
                        recursive,
                        parents,
                        uid,
                        gid,
                        mode,
                    },
                )
            }
            FileCmd::Pull {
                mut paths,
                recursive,
            } => {
                let dest = paths.pop().unwrap_or_default();
                file_cmds::pull(&cfg, &paths, &dest, recursive)
            }
            FileCmd::Delete { targets } => file_cmds::delete(&cfg, &targets),
            FileCmd::Edit { target } => file_cmds::edit(&cfg, &target),
        },
        Command::Config { command } => match command {
            ConfigCmd::Show {
                name: Some(name),
                expanded,
            } => config_cmds::show(&cfg, &name, expanded),
            ConfigCmd::Show { name: None, .. } => server_cmds::show(),
            ConfigCmd::Get { name, key: None } if server_cmds::is_server_key(&name) => {
                server_cmds::get(&name)
            }
            ConfigCmd::Get { name, key } => match key {
                Some(key) => config_cmds::get_key(&cfg, &name, &key),
                None => bail!("warren config get NAME KEY (or a server key: core.https_address)"),
            },
            ConfigCmd::Set { name, pairs } if server_cmds::is_server_key(&name) => {
                server_cmds::set(&name, &pairs)
            }
            ConfigCmd::Set { name, pairs } => config_cmds::set(&cfg, &name, &pairs),
            ConfigCmd::Unset { name, key: None } if server_cmds::is_server_key(&name) => {
                server_cmds::unset(&name)
            }
            ConfigCmd::Unset { name, key } => match key {
                Some(key) => config_cmds::unset(&cfg, &name, &key),
                None => bail!("warren config unset NAME KEY (or a server key: core.https_address)"),
            },
            ConfigCmd::Trust { command } => match command {
                TrustCmd::Add {
                    name,
                    restricted,
                    projects,
                } => server_cmds::trust_add(&name, restricted, &projects),
                TrustCmd::List { format } => server_cmds::trust_list(format),
                TrustCmd::ListTokens { format } => server_cmds::trust_list_tokens(format),
                TrustCmd::RevokeToken { name } => server_cmds::trust_revoke_token(&name),
                TrustCmd::Remove { fingerprint } => server_cmds::trust_remove(&fingerprint),
            },
            ConfigCmd::Edit { name } => config_cmds::edit(&cfg, &name),
            ConfigCmd::Device { command } => match command {
                DeviceCmd::Add {
                    name,
                    device,
                    kind,
                    pairs,
                } => config_cmds::device_add(&cfg, &name, &device, &kind, &pairs),
                DeviceCmd::Remove { name, device } => {
                    config_cmds::device_remove(&cfg, &name, &device)
                }
                DeviceCmd::List { name } => config_cmds::device_list(&cfg, &name),
                DeviceCmd::Show { name } => config_cmds::device_show(&cfg, &name),
            },
        },
        Command::Network { command } => match command {
            NetworkCmd::List { format } => network_cmds::list(format),
            NetworkCmd::Show { name } => network_cmds::show(&name),
            NetworkCmd::Create { name, pairs } => network_cmds::create(&name, &pairs),
            NetworkCmd::Set { name, pairs } => network_cmds::set(&name, &pairs),
            NetworkCmd::Delete { name } => network_cmds::delete(&name),
            NetworkCmd::ListLeases { name, format } => network_cmds::leases(&name, format),
        },
        Command::Operation { command } => match command {
            OperationCmd::List { format } => operation_cmds::list(format),
            OperationCmd::Show { id } => operation_cmds::show(&id),
            OperationCmd::Delete { id } => operation_cmds::delete(&id),
        },
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "warren", &mut std::io::stdout());
            Ok(0)
        }
        Command::Version => {
            println!("Client version: {}", env!("CARGO_PKG_VERSION"));
            let server = client::sync("GET", "/1.0", None)
                .map(|s| {
                    s["environment"]["server_version"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_else(|_| "unreachable".into());
            println!("Server version: {server}");
            Ok(0)
        }
    }
}

fn main() {
    warren_sys::default_sigpipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(1);
        }
    }
}
