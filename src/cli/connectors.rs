//! `tributary connectors ...` and `tributary plugins list`: a client of a running
//! worker's REST API (Kafka Connect's), in the manner of kcctl. Tables for people by
//! default, the server's JSON with `--json`; any error answer exits non-zero with the
//! server's message (`{"error_code", "message"}`).
//!
//! Which worker: `--url`, else the `TRIBUTARY_URL` environment variable, else
//! `http://127.0.0.1:8083` (Kafka Connect's default `listeners`). Plain HTTP only, as the
//! worker serves it.
//!
//! What this is not: it reads no plugin path and no data directory (`tributary plugin
//! list` scans a plugin path locally, without a worker), and it keeps no state.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use serde_json::{Value as Json, json};

/// Where the CLI finds a worker unless told.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8083";
/// The environment variable naming the worker's URL.
pub const URL_ENV: &str = "TRIBUTARY_URL";
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an answer: a little more than the worker's own 90 s timeout, so
/// that its answer, not ours, reports a slow herder.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(100);

/// Which worker to ask and how to print.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The worker's REST API, e.g. http://127.0.0.1:8083 (default: $TRIBUTARY_URL, else
    /// http://127.0.0.1:8083).
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConnectorsArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: ConnectorsCommand,
}

#[derive(Debug, Subcommand)]
enum ConnectorsCommand {
    /// Every connector: type, state, running tasks, class.
    List,
    /// A connector's config, type and tasks.
    Get {
        /// The connector's name.
        name: String,
    },
    /// A connector's state and its tasks' (with the trace of what failed).
    Status {
        /// The connector's name.
        name: String,
    },
    /// Create a connector from a JSON file ({"name": ..., "config": {...}} or a flat
    /// config map; without a name, the file's stem is the name; - reads stdin).
    Create {
        /// The JSON file (- for stdin).
        file: PathBuf,
    },
    /// Replace a connector's config (created if it does not exist) from a JSON file, in
    /// either form.
    Update {
        /// The connector's name.
        name: String,
        /// The JSON file (- for stdin).
        file: PathBuf,
    },
    /// Delete a connector.
    Delete {
        /// The connector's name.
        name: String,
    },
    /// Pause a connector's tasks.
    Pause {
        /// The connector's name.
        name: String,
    },
    /// Resume a paused or stopped connector.
    Resume {
        /// The connector's name.
        name: String,
    },
    /// Stop a connector and its tasks, keeping its config (its offsets can then be
    /// changed).
    Stop {
        /// The connector's name.
        name: String,
    },
    /// Restart a connector; with --include-tasks its tasks too.
    Restart {
        /// The connector's name.
        name: String,
        /// Restart the tasks as well.
        #[arg(long)]
        include_tasks: bool,
        /// Only what has failed.
        #[arg(long)]
        only_failed: bool,
    },
    /// Check a connector config (JSON file, either form) against its plugin without
    /// creating anything; exits 1 if it has errors.
    Validate {
        /// The JSON file (- for stdin).
        file: PathBuf,
    },
    /// A connector's offsets: a source's stored positions, a sink's committed offsets.
    Offsets {
        /// The connector's name.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct PluginsArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// The connector plugins the worker has loaded (GET /connector-plugins).
    List {
        /// Also the converters (connectorsOnly=false).
        #[arg(long)]
        all: bool,
    },
}

/// Run a `connectors` subcommand.
pub fn run_connectors(args: ConnectorsArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.target)?;
    let json_out = args.target.json;
    use ConnectorsCommand as C;
    match args.command {
        C::List => {
            let body = api
                .call("GET", "/connectors?expand=status&expand=info", None)?
                .ok()?;
            if json_out {
                return print_json(&body);
            }
            print!("{}", list_table(&body));
        }
        C::Get { name } => {
            let body = api.call("GET", &connector_path(&name, ""), None)?.ok()?;
            if json_out {
                return print_json(&body);
            }
            print!("{}", info_text(&body));
        }
        C::Status { name } => {
            let body = api
                .call("GET", &connector_path(&name, "/status"), None)?
                .ok()?;
            if json_out {
                return print_json(&body);
            }
            print!("{}", status_text(&body));
        }
        C::Create { file } => {
            let ConnectorFile {
                name,
                mut config,
                initial_state,
            } = read_connector_file(&file)?;
            let name = name.or_else(|| file_stem(&file)).ok_or_else(|| {
                anyhow!(
                    "{}: no connector name; add \"name\" to the config",
                    file.display()
                )
            })?;
            config
                .entry("name")
                .or_insert_with(|| Json::String(name.clone()));
            let mut request = json!({"name": name, "config": config});
            if let Some(state) = initial_state {
                request["initial_state"] = state;
            }
            let body = api.call("POST", "/connectors", Some(&request))?.ok()?;
            if json_out {
                return print_json(&body);
            }
            println!(
                "created connector {} ({})",
                body["name"].as_str().unwrap_or(&name),
                body["type"].as_str().unwrap_or("unknown")
            );
        }
        C::Update { name, file } => {
            // The command line names the connector; a name in the file must agree (the
            // worker checks).
            let config = Json::Object(read_connector_file(&file)?.config);
            let reply = api.call("PUT", &connector_path(&name, "/config"), Some(&config))?;
            let created = reply.status == 201;
            let body = reply.ok()?;
            if json_out {
                return print_json(&body);
            }
            let verb = if created { "created" } else { "updated" };
            println!("{verb} connector {name}");
        }
        C::Delete { name } => {
            api.call("DELETE", &connector_path(&name, ""), None)?.ok()?;
            done(json_out, &format!("deleted connector {name}"));
        }
        C::Pause { name } => {
            api.call("PUT", &connector_path(&name, "/pause"), None)?
                .ok()?;
            done(
                json_out,
                &format!(
                    "pausing connector {name} (tributary connectors status {name} shows when it is)"
                ),
            );
        }
        C::Resume { name } => {
            api.call("PUT", &connector_path(&name, "/resume"), None)?
                .ok()?;
            done(json_out, &format!("resuming connector {name}"));
        }
        C::Stop { name } => {
            api.call("PUT", &connector_path(&name, "/stop"), None)?
                .ok()?;
            done(json_out, &format!("stopped connector {name}"));
        }
        C::Restart {
            name,
            include_tasks,
            only_failed,
        } => {
            // Kafka's legacy form (no parameters) when neither is asked for.
            let params: Vec<&str> = [
                include_tasks.then_some("includeTasks=true"),
                only_failed.then_some("onlyFailed=true"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let query = if params.is_empty() {
                String::new()
            } else {
                format!("?{}", params.join("&"))
            };
            let body = api
                .call(
                    "POST",
                    &connector_path(&name, &format!("/restart{query}")),
                    None,
                )?
                .ok()?;
            if json_out {
                return print_json(&body);
            }
            if body.is_null() {
                println!("restarted connector {name}");
            } else {
                println!("restarting connector {name}:");
                print!("{}", status_text(&body));
            }
        }
        C::Validate { file } => {
            let config = Json::Object(read_connector_file(&file)?.config);
            let class = config
                .get("connector.class")
                .and_then(Json::as_str)
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    anyhow!(
                        "{} has no connector.class: name the connector plugin (tributary plugins list shows them)",
                        file.display()
                    )
                })?
                .trim()
                .to_owned();
            let path = format!(
                "/connector-plugins/{}/config/validate",
                percent_encode(&class)
            );
            let body = api.call("PUT", &path, Some(&config))?.ok()?;
            let errors = body["error_count"].as_u64().unwrap_or(0);
            if json_out {
                print_json(&body)?;
            } else {
                print!("{}", validation_text(&body));
            }
            if errors > 0 {
                bail!(
                    "{}: {errors} error(s) in the config; fix them and validate again",
                    file.display()
                );
            }
        }
        C::Offsets { name } => {
            let body = api
                .call("GET", &connector_path(&name, "/offsets"), None)?
                .ok()?;
            if json_out {
                return print_json(&body);
            }
            print!("{}", offsets_table(&body));
        }
    }
    Ok(())
}

/// Run a `plugins` subcommand.
pub fn run_plugins(args: PluginsArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.target)?;
    match args.command {
        PluginsCommand::List { all } => {
            let path = if all {
                "/connector-plugins?connectorsOnly=false"
            } else {
                "/connector-plugins"
            };
            let body = api.call("GET", path, None)?.ok()?;
            if args.target.json {
                return print_json(&body);
            }
            let rows = body
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            vec![
                                text(&p["class"]),
                                text(&p["type"]),
                                p.get("version").map(text).unwrap_or_default(),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print!("{}", table(&["CLASS", "TYPE", "VERSION"], rows));
        }
    }
    Ok(())
}

fn done(json_out: bool, message: &str) {
    // The server answers these with no body: there is no JSON to print.
    if !json_out {
        println!("{message}");
    }
}

fn print_json(body: &Json) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(body)?);
    Ok(())
}

// ---- the REST client ------------------------------------------------------------------

/// A worker's REST API at one URL.
#[derive(Debug)]
struct Api {
    /// As given, for messages.
    url: String,
    host: String,
    port: u16,
    /// A path the API is served under (usually empty), without a trailing slash.
    prefix: String,
    /// `--json`: an error answer's body is printed too.
    json_out: bool,
    runtime: tokio::runtime::Runtime,
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Bytes,
    /// `METHOD PATH`, for messages.
    what: String,
    /// Print an error answer's JSON body on stdout (`--json`).
    echo_error: bool,
}

impl Api {
    fn new(target: &Target) -> anyhow::Result<Api> {
        let (url, from) = match &target.url {
            Some(u) => (u.clone(), "--url"),
            None => match std::env::var(URL_ENV) {
                Ok(u) if !u.trim().is_empty() => (u, URL_ENV),
                _ => (DEFAULT_URL.to_owned(), "the default URL"),
            },
        };
        let (host, port, prefix) = parse_url(&url).map_err(|reason| {
            anyhow!("{from} {url:?}: {reason}; expected http://HOST:PORT, e.g. {DEFAULT_URL}")
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Api {
            url: url.trim_end_matches('/').to_owned(),
            host,
            port,
            prefix,
            json_out: target.json,
            runtime,
        })
    }

    /// One request; `Err` only if there is no answer.
    fn call(&self, method: &str, path: &str, body: Option<&Json>) -> anyhow::Result<Reply> {
        let what = format!("{method} {path}");
        self.runtime.block_on(async {
            match tokio::time::timeout(REQUEST_TIMEOUT, self.send(method, path, body)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow!(
                    "the worker at {} did not answer {what} within {} s; see its log",
                    self.url,
                    REQUEST_TIMEOUT.as_secs()
                )),
            }
        })
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Json>) -> anyhow::Result<Reply> {
        let what = format!("{method} {path}");
        let unreachable = |reason: String| {
            anyhow!(
                "cannot reach the worker's REST API at {} ({reason}); start the worker \
                 (tributary standalone WORKER_CONFIG) or pass --url (or set {URL_ENV}) to \
                 name a running one",
                self.url
            )
        };
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        let connection = tokio::spawn(connection);
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b)?),
            None => Bytes::new(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(HOST, format!("{}:{}", self.host, self.port))
            .header(ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(bytes))
            .with_context(|| format!("building the request {what}"))?;
        let response = sender.send_request(request).await.map_err(|e| {
            anyhow!(
                "no HTTP answer to {what} from {} ({e}); check that it is the worker's REST \
                 API (its listeners key), and see the worker's log",
                self.url
            )
        })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer to {what} from {}: {e}", self.url))?
            .to_bytes();
        connection.abort();
        Ok(Reply {
            status,
            body,
            what,
            echo_error: self.json_out,
        })
    }
}

impl Reply {
    /// The body of a success as JSON (`Null` if empty); an error answer as the server's
    /// message (with `--json`, its body is printed on stdout too, for scripts).
    fn ok(self) -> anyhow::Result<Json> {
        let parsed: Option<Json> = if self.body.is_empty() {
            Some(Json::Null)
        } else {
            serde_json::from_slice(&self.body).ok()
        };
        if self.status < 300 {
            return parsed.ok_or_else(|| {
                anyhow!(
                    "{} answered HTTP {} with a body that is not JSON: {}",
                    self.what,
                    self.status,
                    String::from_utf8_lossy(&self.body)
                )
            });
        }
        if self.echo_error
            && let Some(body) = parsed.as_ref().filter(|j| !j.is_null())
        {
            print_json(body)?;
        }
        match parsed
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(Json::as_str)
        {
            Some(message) => bail!("{message} (HTTP {})", self.status),
            None => bail!(
                "{} answered HTTP {}: {}",
                self.what,
                self.status,
                String::from_utf8_lossy(&self.body)
            ),
        }
    }
}

/// `http://host:port[/prefix]` (or `host:port`) → (host, port, prefix).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let url = url.trim();
    if url.starts_with("https://") {
        return Err("https is not supported (the worker serves plain http)".into());
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        return Err("only http:// URLs are supported".into());
    }
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if prefix.contains(['?', '#']) {
        return Err("a query or fragment has no place in the worker's URL".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("an unclosed [ in the host")?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => 80,
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
    };
    Ok((host.to_owned(), port, prefix.to_owned()))
}

/// `/connectors/NAME{suffix}` with the name percent-encoded.
fn connector_path(name: &str, suffix: &str) -> String {
    format!("/connectors/{}{suffix}", percent_encode(name))
}

/// Everything but RFC 3986's unreserved characters, percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- connector files -----------------------------------------------------------------

/// What a connector JSON file says, in either form Kafka accepts.
#[derive(Debug)]
struct ConnectorFile {
    /// The name it gives, if any.
    name: Option<String>,
    /// The flat config (with that name).
    config: serde_json::Map<String, Json>,
    /// The wrapped form's `initial_state`, for a create.
    initial_state: Option<Json>,
}

/// Read a connector JSON file (`-`: stdin).
fn read_connector_file(file: &Path) -> anyhow::Result<ConnectorFile> {
    let text = read_text(file)?;
    let doc: Json = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let Json::Object(mut top) = doc else {
        bail!(
            "{}: expected a JSON object, {{\"name\": ..., \"config\": {{...}}}} or a flat config map",
            file.display()
        );
    };
    let mut initial_state = None;
    let (name, config) = match top.remove("config") {
        Some(Json::Object(config)) => {
            let name = top.get("name").and_then(Json::as_str).map(str::to_owned);
            initial_state = top.remove("initial_state");
            (name, config)
        }
        Some(_) => bail!("{}: \"config\" must be a JSON object", file.display()),
        None => (None, top),
    };
    let mut config = config;
    let name = name.or_else(|| config.get("name").and_then(Json::as_str).map(str::to_owned));
    // A name given outside the config goes in, so the worker checks it against the URL.
    if let Some(n) = &name {
        config
            .entry("name")
            .or_insert_with(|| Json::String(n.clone()));
    }
    Ok(ConnectorFile {
        name,
        config,
        initial_state,
    })
}

fn file_stem(file: &Path) -> Option<String> {
    if file == Path::new("-") {
        return None;
    }
    file.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn read_text(file: &Path) -> anyhow::Result<String> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the connector config from stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(file)
        .with_context(|| format!("reading the connector config {}", file.display()))
}

// ---- output ----------------------------------------------------------------------------

/// A JSON value as table text: strings bare, null empty, anything else compact JSON.
fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(&cell);
            } else {
                out.push_str(&format!(
                    "{cell:<w$}  ",
                    w = widths.get(i).copied().unwrap_or(0)
                ));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn list_table(body: &Json) -> String {
    let Some(map) = body.as_object() else {
        return String::new();
    };
    let rows = map
        .iter()
        .map(|(name, entry)| {
            let status = &entry["status"];
            let tasks = status["tasks"].as_array().cloned().unwrap_or_default();
            let running = tasks.iter().filter(|t| t["state"] == "RUNNING").count();
            vec![
                name.clone(),
                text(&entry["info"]["type"]),
                text(&status["connector"]["state"]),
                format!("{running}/{}", tasks.len()),
                text(&entry["info"]["config"]["connector.class"]),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "STATE", "TASKS", "CLASS"], rows)
}

fn info_text(body: &Json) -> String {
    let tasks = body["tasks"].as_array().map_or(0, Vec::len);
    let mut out = format!(
        "name:  {}\ntype:  {}\ntasks: {tasks}\nconfig:\n",
        text(&body["name"]),
        text(&body["type"])
    );
    let config: BTreeMap<&String, String> = body["config"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k, text(v))).collect())
        .unwrap_or_default();
    for (k, v) in config {
        out.push_str(&format!("  {k} = {v}\n"));
    }
    out
}

fn status_text(body: &Json) -> String {
    let connector = &body["connector"];
    let mut out = format!(
        "connector {} ({}): {} on {}\n",
        text(&body["name"]),
        text(&body["type"]),
        text(&connector["state"]),
        text(&connector["worker_id"])
    );
    if let Some(trace) = connector["trace"].as_str() {
        out.push_str(&indent(trace));
    }
    let tasks = body["tasks"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        out.push_str("no tasks\n");
        return out;
    }
    let rows = tasks
        .iter()
        .map(|t| {
            vec![
                text(&t["id"]),
                text(&t["state"]),
                text(&t["worker_id"]),
                t["trace"]
                    .as_str()
                    .and_then(|s| s.lines().next())
                    .unwrap_or_default()
                    .to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(&["TASK", "STATE", "WORKER", "TRACE"], rows));
    out
}

fn indent(trace: &str) -> String {
    trace.lines().map(|l| format!("  {l}\n")).collect()
}

fn validation_text(body: &Json) -> String {
    let errors = body["error_count"].as_u64().unwrap_or(0);
    let class = text(&body["name"]);
    if errors == 0 {
        return format!("{class}: the config is valid\n");
    }
    let rows = body["configs"]
        .as_array()
        .map(|configs| {
            configs
                .iter()
                .flat_map(|c| {
                    let key = text(&c["value"]["name"]);
                    let value = text(&c["value"]["value"]);
                    c["value"]["errors"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |e| vec![key.clone(), value.clone(), text(&e)])
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{class}: {errors} error(s)\n{}",
        table(&["KEY", "VALUE", "ERROR"], rows)
    )
}

fn offsets_table(body: &Json) -> String {
    let rows: Vec<Vec<String>> = body["offsets"]
        .as_array()
        .map(|o| {
            o.iter()
                .map(|e| vec![e["partition"].to_string(), e["offset"].to_string()])
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return "no offsets stored\n".into();
    }
    table(&["PARTITION", "OFFSET"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = |u: &str| parse_url(u).unwrap();
        assert_eq!(
            ok("http://127.0.0.1:8083"),
            ("127.0.0.1".into(), 8083, "".into())
        );
        assert_eq!(ok("localhost:9"), ("localhost".into(), 9, "".into()));
        assert_eq!(ok("http://h:1/api/"), ("h".into(), 1, "/api".into()));
        assert_eq!(ok("http://[::1]:8083"), ("::1".into(), 8083, "".into()));
        assert_eq!(ok("http://h"), ("h".into(), 80, "".into()));
        for bad in [
            "https://h:1",
            "ftp://h",
            "http://:1",
            "http://h:port",
            "http://h:1/?x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(
            connector_path("a b/c", "/status"),
            "/connectors/a%20b%2Fc/status"
        );
        assert_eq!(percent_encode("ok-1._~"), "ok-1._~");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB"],
            vec![vec!["xyz".into(), "1".into()], vec!["".into(), "22".into()]],
        );
        assert_eq!(t, "A    BB\nxyz  1\n     22\n");
    }
}
