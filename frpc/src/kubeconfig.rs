//! `frpc kubeconfig`: a kubeconfig that reaches a private cluster's kube-apiserver through the
//! tunnel.
//!
//! It reads the cluster's own kubeconfig, keeps one context with its user and CA, and points
//! the cluster's `server` at the tunneled endpoint. TLS stays end to end between kubectl and
//! the apiserver, so certificate verification must stay correct for the route frps uses:
//!
//! - **tcp** (a public port per cluster): kubectl connects to `https://SERVER:PORT`, a name the
//!   apiserver certificate does not list; `tls-server-name` is set to a name it does (the one
//!   the original kubeconfig reached it by), so any apiserver certificate works.
//! - **https by SNI** (`vhostHTTPSPort`, one port for many clusters): frps routes by the name
//!   kubectl sends, which is `tls-server-name`. That name must be in the apiserver
//!   certificate's SANs (kubeadm `apiServer.certSANs`, k3s `--tls-san`, ...), since kubectl
//!   verifies the certificate against it.
//!
//! Relative file paths of the original (CA, client certificate and key) are made absolute;
//! embedded data is kept as it is. The file written is mode 0600 (it holds credentials, or
//! says where they are) and an existing file is replaced only with `--force`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use frp_proto::ProxyKind;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

use crate::ClientSettings;

/// The long help of `frpc kubeconfig`: what it writes and the one real constraint.
pub const LONG_HELP: &str = "Write a kubeconfig that reaches a private cluster's kube-apiserver \
through the tunnel: one context of the cluster's own kubeconfig (--from), with its user and CA, \
whose server is the tunneled endpoint.\n\n\
The endpoint comes from a proxy of frpc.toml (--proxy) or is given (--server).\n\n\
A tcp proxy (one public port per cluster) works with any apiserver certificate: \
tls-server-name is set to the name the original kubeconfig used, which the certificate lists.\n\n\
An https proxy is routed by SNI on the server's vhostHTTPSPort (one port for many clusters): \
kubectl sends its tls-server-name (the proxy's domain, or --sni) as SNI and verifies the \
apiserver certificate against it, so that name MUST be in the apiserver certificate's SANs \
(kubeadm: apiServer.certSANs; k3s: --tls-san; others: their equivalent).";

/// Arguments of `frpc kubeconfig`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("endpoint").required(true).args(["server", "proxy"])))]
pub struct KubeconfigArgs {
    /// The cluster's kubeconfig [default: first of $KUBECONFIG, ~/.kube/config,
    /// /etc/kubernetes/admin.conf].
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Context to take [default: its current-context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Where to write the new kubeconfig (mode 0600) [default: standard output].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the --output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Name of the new context and cluster [default: CONTEXT-tunnel].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Take the endpoint from this proxy of the frpc config (a tcp or an https proxy).
    #[arg(long, value_name = "PROXY")]
    pub proxy: Option<String>,
    /// The frpc config --proxy names a proxy of.
    #[arg(short, long, value_name = "FILE", default_value = "frpc.toml")]
    pub config: PathBuf,
    /// The server's vhostHTTPSPort, for an https proxy.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub https_port: u16,
    /// The tunneled endpoint, https://HOST:PORT (tcp route unless --sni is given).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// With --server: route by SNI with this name (it must be in the apiserver's SANs).
    #[arg(long, value_name = "NAME", requires = "server")]
    pub sni: Option<String>,
    /// tcp route: the name to verify the apiserver certificate against [default: the host
    /// the original kubeconfig used].
    #[arg(long, value_name = "NAME", conflicts_with = "sni")]
    pub tls_server_name: Option<String>,
}

/// How frps routes to the apiserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A public port of its own; verify against this name, or the original host if `None`.
    Tcp(Option<String>),
    /// The shared HTTPS port, chosen by this SNI name.
    Sni(String),
}

/// The tunneled endpoint of one apiserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// `https://HOST:PORT` on the frps side.
    pub server: String,
    /// How frps gets there.
    pub route: Route,
}

/// A rewritten kubeconfig and what to tell the user about it.
#[derive(Debug)]
pub struct Rewritten {
    /// The new kubeconfig, YAML.
    pub yaml: String,
    /// Name of its context.
    pub context: String,
    /// The `tls-server-name` it sets.
    pub tls_server_name: String,
}

/// Runs `frpc kubeconfig` and reports errors on stderr.
pub fn main(args: KubeconfigArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &KubeconfigArgs) -> anyhow::Result<()> {
    let from = match &args.from {
        Some(f) => f.clone(),
        None => default_source()?,
    };
    let source =
        std::fs::read_to_string(&from).with_context(|| format!("reading {}", from.display()))?;
    let tunnel = match (&args.server, &args.proxy) {
        (Some(server), _) => Tunnel {
            server: server.clone(),
            route: match &args.sni {
                Some(name) => Route::Sni(name.clone()),
                None => Route::Tcp(args.tls_server_name.clone()),
            },
        },
        (None, Some(proxy)) => {
            let settings = ClientSettings::from_file(&args.config)
                .with_context(|| format!("loading {}", args.config.display()))?;
            let mut t = tunnel_for_proxy(&settings, proxy, args.https_port)?;
            if let (Route::Tcp(name), Some(over)) = (&mut t.route, &args.tls_server_name) {
                *name = Some(over.clone());
            }
            t
        }
        (None, None) => bail!("give --proxy NAME or --server URL"),
    };
    let base = from.parent().unwrap_or(Path::new("."));
    let out = rewrite(
        &source,
        base,
        args.context.as_deref(),
        &tunnel,
        args.name.as_deref(),
    )
    .with_context(|| format!("rewriting {}", from.display()))?;
    match &args.output {
        Some(path) => {
            write_private(path, &out.yaml, args.force)?;
            eprintln!(
                "wrote {} (context {}: server {}, tls-server-name {})",
                path.display(),
                out.context,
                tunnel.server,
                out.tls_server_name
            );
        }
        None => print!("{}", out.yaml),
    }
    if let Route::Sni(name) = &tunnel.route {
        eprintln!(
            "note: routed by SNI: {name} must be in the apiserver certificate's SANs \
             (kubeadm apiServer.certSANs, k3s --tls-san), or kubectl will refuse it"
        );
    }
    Ok(())
}

/// The kubeconfig kubectl would use: the first existing file of `$KUBECONFIG`, else
/// `~/.kube/config`, else kubeadm's `/etc/kubernetes/admin.conf`.
///
/// # Errors
/// When none of them exists, naming those looked at.
pub fn default_source() -> anyhow::Result<PathBuf> {
    let mut tried: Vec<PathBuf> = std::env::var_os("KUBECONFIG")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        tried.push(Path::new(&home).join(".kube").join("config"));
    }
    tried.push(PathBuf::from("/etc/kubernetes/admin.conf"));
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        anyhow!(
            "no kubeconfig found (looked at {}): pass --from FILE",
            list.join(", ")
        )
    })
}

/// The endpoint of proxy `name` of `settings`: a tcp proxy's `serverAddr:remotePort`, or an
/// https proxy's first exact domain on `serverAddr:https_port`.
///
/// # Errors
/// When there is no such proxy, it is an http proxy, or its endpoint is not known in advance
/// (`remotePort = 0`, only a wildcard or a `subdomain`).
pub fn tunnel_for_proxy(
    settings: &ClientSettings,
    name: &str,
    https_port: u16,
) -> anyhow::Result<Tunnel> {
    let proxy = settings
        .proxies
        .iter()
        .find(|p| p.name.as_str() == name)
        .ok_or_else(|| anyhow!("no proxy named {name:?} in the frpc config"))?;
    let host = url_host(&settings.server_host);
    match proxy.kind {
        ProxyKind::Tcp if proxy.remote_port == 0 => bail!(
            "proxy {name:?} lets the server pick its port (remotePort = 0): set remotePort, \
             or pass --server https://HOST:PORT with the port frps bound"
        ),
        ProxyKind::Tcp => Ok(Tunnel {
            server: format!("https://{host}:{}", proxy.remote_port),
            route: Route::Tcp(None),
        }),
        ProxyKind::Https => {
            let domain = proxy
                .vhost
                .custom_domains
                .iter()
                .find(|d| !d.starts_with('*'))
                .ok_or_else(|| {
                    anyhow!(
                        "proxy {name:?} has no exact customDomains entry (a subdomain or a \
                         wildcard needs the server's names): pass --server and --sni"
                    )
                })?;
            Ok(Tunnel {
                server: format!("https://{host}:{https_port}"),
                route: Route::Sni(domain.clone()),
            })
        }
        _ => bail!(
            "proxy {name:?} is an http proxy, which reads HTTP at frps; the apiserver needs a \
             tcp or an https proxy (TLS end to end)"
        ),
    }
}

/// `host` as it goes in a URL (an IPv6 address in brackets).
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The host of an `https://HOST[:PORT][/...]` URL, without brackets.
fn host_of(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("server {url:?} is not an https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        bail!("server {url:?} has no host");
    }
    Ok(host.to_string())
}

/// Rewrites kubeconfig `source` (whose relative paths are relative to `base`) for `tunnel`:
/// context `context` (or its current one), renamed `name` (or `CONTEXT-tunnel`).
///
/// # Errors
/// When `source` is not a kubeconfig, lacks the context, its cluster or user, or a server URL
/// is not `https://`.
pub fn rewrite(
    source: &str,
    base: &Path,
    context: Option<&str>,
    tunnel: &Tunnel,
    name: Option<&str>,
) -> anyhow::Result<Rewritten> {
    host_of(&tunnel.server)?;
    let docs = YamlLoader::load_from_str(source).context("parsing YAML")?;
    let [doc] = docs.as_slice() else {
        bail!("expected one YAML document, found {}", docs.len());
    };
    let ctx_name = match context {
        Some(c) => c.to_string(),
        None => text(&doc["current-context"])
            .ok_or_else(|| anyhow!("no current-context: pass --context"))?,
    };
    let ctx = named(doc, "contexts", &ctx_name)?["context"].clone();
    let cluster_name = text(&ctx["cluster"]).ok_or_else(|| anyhow!("context has no cluster"))?;
    let user_name = text(&ctx["user"]).ok_or_else(|| anyhow!("context has no user"))?;
    let mut cluster = named(doc, "clusters", &cluster_name)?["cluster"].clone();
    let mut user = named(doc, "users", &user_name)?["user"].clone();
    let original = text(&cluster["server"]).ok_or_else(|| anyhow!("cluster has no server"))?;
    let tls_server_name = match &tunnel.route {
        Route::Sni(n) => n.clone(),
        Route::Tcp(Some(n)) => n.clone(),
        Route::Tcp(None) => match text(&cluster["tls-server-name"]) {
            Some(n) => n,
            None => host_of(&original)?,
        },
    };
    set(&mut cluster, "server", &tunnel.server)?;
    set(&mut cluster, "tls-server-name", &tls_server_name)?;
    absolutize(&mut cluster, &["certificate-authority"], base)?;
    absolutize(
        &mut user,
        &["client-certificate", "client-key", "tokenFile"],
        base,
    )?;
    let new_name = name.map_or_else(|| format!("{ctx_name}-tunnel"), str::to_string);
    let mut new_ctx = ctx.clone();
    set(&mut new_ctx, "cluster", &new_name)?;
    let entry = |key: &str, value: Yaml| {
        let mut h = Hash::new();
        h.insert(
            s("name"),
            s(if key == "user" { &user_name } else { &new_name }),
        );
        h.insert(s(key), value);
        Yaml::Array(vec![Yaml::Hash(h)])
    };
    let mut out = Hash::new();
    out.insert(s("apiVersion"), s("v1"));
    out.insert(s("kind"), s("Config"));
    out.insert(s("clusters"), entry("cluster", cluster));
    out.insert(s("contexts"), entry("context", new_ctx));
    out.insert(s("current-context"), s(&new_name));
    out.insert(s("preferences"), Yaml::Hash(Hash::new()));
    out.insert(s("users"), entry("user", user));
    let mut yaml = String::new();
    YamlEmitter::new(&mut yaml)
        .dump(&Yaml::Hash(out))
        .context("writing YAML")?;
    yaml.push('\n');
    Ok(Rewritten {
        yaml,
        context: new_name,
        tls_server_name,
    })
}

fn s(v: &str) -> Yaml {
    Yaml::String(v.to_string())
}

fn text(y: &Yaml) -> Option<String> {
    y.as_str().map(str::to_string)
}

/// The entry of list `list` whose `name` is `name`.
fn named<'a>(doc: &'a Yaml, list: &str, name: &str) -> anyhow::Result<&'a Yaml> {
    doc[list]
        .as_vec()
        .into_iter()
        .flatten()
        .find(|e| e["name"].as_str() == Some(name))
        .ok_or_else(|| anyhow!("no entry named {name:?} in {list}"))
}

fn set(map: &mut Yaml, key: &str, value: &str) -> anyhow::Result<()> {
    match map {
        Yaml::Hash(h) => {
            h.insert(s(key), s(value));
            Ok(())
        }
        _ => bail!("expected a mapping where {key} goes"),
    }
}

/// Makes the relative paths under `keys` of `map` absolute against `base`.
fn absolutize(map: &mut Yaml, keys: &[&str], base: &Path) -> anyhow::Result<()> {
    for key in keys {
        if let Some(p) = text(&map[*key]).filter(|p| Path::new(p).is_relative()) {
            let abs = std::path::absolute(base.join(p)).context("resolving a relative path")?;
            set(map, key, &abs.to_string_lossy())?;
        }
    }
    Ok(())
}

/// Writes `contents` to `path` with mode 0600, replacing an existing file only if `force`.
///
/// # Errors
/// When the file exists and `force` is false, or it cannot be written.
pub fn write_private(path: &Path, contents: &str, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    frp_certs::set_create_mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    frp_certs::set_mode(&f, 0o600)
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[path = "kubeconfig_tests.rs"]
mod tests;
