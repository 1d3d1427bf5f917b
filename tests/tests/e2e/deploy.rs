//! The deployment files, checked as far as this machine can: the compose file and the Kubernetes
//! manifests against their vendored JSON schemas, the Dockerfile's basics, the RabbitMQ
//! definitions against what storehook declares (and against the broker), and
//! `docs/operations.md` against every configuration key and metric the code has.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use storehook::configuration::Settings;
use storehook_tests::app::storehook_binary;
use storehook_tests::broker::PrivateNode;
use storehook_tests::forwarding::{ForwardApp, ForwardConfig};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = repository().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_file(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every document of a YAML file, with merge keys (`<<: *anchor`) applied, as JSON.
fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = <serde_norway::Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{relative}: {e}"));
            serde_json::to_value(value).unwrap_or_else(|e| panic!("{relative}: {e}"))
        })
        .collect()
}

/// The schema's complaints about `instance`, one line each.
fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| format!("{}: {error}", error.instance_path))
        .collect()
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let mut schema = json_file("deploy/schemas/compose-spec.json");
    // The file names draft-07 by an address the validator does not know offline
    // (`https://…/draft-07/schema`); the canonical one is built in.
    schema["$schema"] = Value::from("http://json-schema.org/draft-07/schema#");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .expect("the compose schema compiles");
    let documents = yaml_documents("deploy/compose.yaml");
    assert_eq!(documents.len(), 1, "one compose document");
    let compose = &documents[0];
    let problems = violations(&validator, compose);
    assert!(
        problems.is_empty(),
        "deploy/compose.yaml:\n{}",
        problems.join("\n")
    );
    // A typo is caught.
    let mut broken = compose.clone();
    broken["services"]["postgres"]["helthcheck"] = Value::from("x");
    assert!(!violations(&validator, &broken).is_empty());

    let services = compose["services"].as_object().expect("services");
    for needed in ["rabbitmq", "postgres"] {
        assert!(services.contains_key(needed), "a {needed} service");
    }
    let replicas: Vec<&String> = services
        .keys()
        .filter(|name| name.starts_with("storehook"))
        .collect();
    assert!(replicas.len() >= 2, "at least two storehook replicas");
    for (name, service) in services {
        assert!(
            service["healthcheck"]["test"].is_array(),
            "{name} has a health check"
        );
    }
    for name in replicas {
        let service = &services[name.as_str()];
        for dependency in ["rabbitmq", "postgres"] {
            assert_eq!(
                service["depends_on"][dependency]["condition"], "service_healthy",
                "{name} waits for a healthy {dependency}"
            );
        }
        let database = service["environment"]["STOREHOOK__DATABASE__URL"]
            .as_str()
            .unwrap_or_default();
        assert!(
            database.starts_with("postgres://"),
            "{name} shares PostgreSQL"
        );
    }
    let rabbitmq = &services["rabbitmq"];
    assert!(
        rabbitmq["image"]
            .as_str()
            .is_some_and(|image| image.contains("management")),
        "RabbitMQ with the management plugin"
    );
    // Every file the compose file mounts exists.
    for service in services.values() {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let Some(source) = volume.as_str().and_then(|v| v.split(':').next()) else {
                continue;
            };
            if source.starts_with('.') {
                assert!(
                    repository().join("deploy").join(source).exists(),
                    "{source} is mounted but missing"
                );
            }
        }
    }
}

/// The schema for `kind`, with the shared Kubernetes definitions registered where its `$ref`s
/// point (`/api/_definitions.json`).
fn kubernetes_validator(kind: &str) -> jsonschema::Validator {
    let file = match kind {
        "Deployment" => "deployment-apps-v1.json",
        "Service" => "service-v1.json",
        "ConfigMap" => "configmap-v1.json",
        "PodDisruptionBudget" => "poddisruptionbudget-policy-v1.json",
        other => panic!("no vendored schema for kind {other}"),
    };
    let folder = "deploy/schemas/kubernetes-v1.33.0";
    let mut schema = json_file(&format!("{folder}/{file}"));
    schema["$id"] = Value::from(format!("file:///api/{file}"));
    let definitions =
        jsonschema::Resource::from_contents(json_file(&format!("{folder}/_definitions.json")))
            .expect("the definitions load");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .with_resource("file:///api/_definitions.json", definitions)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the {kind} schema compiles: {e}"))
}

/// The manifests of `deploy/kubernetes/` by kind (the kustomization aside).
fn manifests() -> Vec<(String, Value)> {
    let folder = repository().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("deploy/kubernetes")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut manifests = Vec::new();
    for path in files {
        let relative = format!(
            "deploy/kubernetes/{}",
            path.file_name().and_then(|n| n.to_str()).expect("a name")
        );
        for document in yaml_documents(&relative) {
            let kind = document["kind"].as_str().expect("a kind").to_owned();
            manifests.push((kind, document));
        }
    }
    manifests
}

#[test]
fn the_kubernetes_manifests_follow_the_kubernetes_1_33_schemas() {
    let manifests = manifests();
    let mut kinds = BTreeSet::new();
    for (kind, manifest) in &manifests {
        if kind == "Kustomization" {
            continue;
        }
        let problems = violations(&kubernetes_validator(kind), manifest);
        assert!(problems.is_empty(), "{kind}:\n{}", problems.join("\n"));
        kinds.insert(kind.as_str());
    }
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"])
    );
    // A typo is caught: the schemas are strict.
    let (_, deployment) = manifests
        .iter()
        .find(|(kind, _)| kind == "Deployment")
        .expect("a Deployment");
    let mut broken = deployment.clone();
    broken["spec"]["replica"] = Value::from(2);
    assert!(!violations(&kubernetes_validator("Deployment"), &broken).is_empty());
}

#[test]
fn the_deployment_probes_limits_and_stops_in_time() {
    let manifests = manifests();
    let (_, deployment) = manifests
        .iter()
        .find(|(kind, _)| kind == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(deployment["spec"]["replicas"].as_u64() >= Some(2));
    // The Secret is referenced by name, never committed.
    let secrets: BTreeSet<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|env| env["valueFrom"]["secretKeyRef"]["name"].as_str())
        .collect();
    assert_eq!(secrets, BTreeSet::from(["storehook"]));

    // The ConfigMap's file is a valid storehook configuration, and its shutdown bound (plus the
    // preStop pause) fits in the pod's grace period.
    let (_, config_map) = manifests
        .iter()
        .find(|(kind, _)| kind == "ConfigMap")
        .expect("a ConfigMap");
    let toml = config_map["data"]["storehook.toml"]
        .as_str()
        .expect("storehook.toml in the ConfigMap");
    let settings = Settings::from_toml(toml).expect("the ConfigMap's storehook.toml is valid");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("a grace period");
    let pause = container["lifecycle"]["preStop"]["exec"]["command"][1]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        settings.server.shutdown_timeout.as_secs() + pause < grace,
        "server.shutdown_timeout + preStop must end before the pod is killed"
    );
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let dockerfile = read("deploy/Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let stages = instructions
        .iter()
        .filter(|line| line.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "a multi-stage build");
    assert!(dockerfile.contains("--locked"), "the locked dependencies");
    assert!(dockerfile.contains("COPY --from=builder"));
    let user = instructions
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER instruction");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        uid != "0" && uid != "root" && !uid.is_empty(),
        "runs as a non-root user, not {user}"
    );
    assert!(instructions.contains(&"EXPOSE 8080"));
    assert!(
        repository().join(".dockerignore").exists(),
        "a .dockerignore keeps target/ out of the build context"
    );
}

#[test]
fn the_definitions_file_is_what_storehook_definitions_prints() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let empty = dir.path().join("storehook.toml");
    std::fs::write(&empty, "").expect("an empty configuration");
    let output = Command::new(storehook_binary())
        .args(["definitions", "--config"])
        .arg(&empty)
        .env_clear()
        .output()
        .expect("storehook definitions runs");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let committed = read("deploy/rabbitmq/definitions.json");
    assert_eq!(
        committed.trim_end(),
        printed.trim_end(),
        "deploy/rabbitmq/definitions.json is stale: regenerate it with \
         `storehook definitions > deploy/rabbitmq/definitions.json`"
    );
}

fn amqp_value(value: &Value) -> AMQPValue {
    match value {
        Value::String(text) => AMQPValue::LongString(LongString::from(text.as_str())),
        Value::Number(number) => {
            AMQPValue::LongLongInt(number.as_i64().expect("an integer argument"))
        }
        Value::Bool(flag) => AMQPValue::Boolean(*flag),
        other => panic!("an argument storehook does not use: {other}"),
    }
}

fn field_table(arguments: &Value) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in arguments.as_object().into_iter().flatten() {
        table.insert(key.as_str().into(), amqp_value(value));
    }
    table
}

/// The committed definitions, declared on the real broker under a test prefix (what an operator
/// who imports them does), and then storehook starting on that topology: it declares the same
/// names with the same arguments, so it consumes instead of failing with PRECONDITION_FAILED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_accepts_the_definitions_and_storehook_redeclares_them() {
    let config = ForwardConfig::new(Vec::new(), "");
    let rename = |name: &str| {
        let rest = name
            .strip_prefix("storehook.")
            .unwrap_or_else(|| panic!("{name} is not under the default prefix"));
        format!("{}.{rest}", config.prefix)
    };
    let definitions = json_file("deploy/rabbitmq/definitions.json");
    let connection =
        Connection::connect(storehook_tests::AMQP_URL, ConnectionProperties::default())
            .await
            .expect("RabbitMQ at 127.0.0.1:5672");
    let channel = connection.create_channel().await.expect("a channel");
    for exchange in definitions["exchanges"].as_array().expect("exchanges") {
        assert_eq!(exchange["type"], "topic");
        channel
            .exchange_declare(
                rename(exchange["name"].as_str().expect("a name"))
                    .as_str()
                    .into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: exchange["durable"] == true,
                    auto_delete: exchange["auto_delete"] == true,
                    internal: exchange["internal"] == true,
                    ..ExchangeDeclareOptions::default()
                },
                field_table(&exchange["arguments"]),
            )
            .await
            .expect("RabbitMQ accepts the exchange");
    }
    let queues = definitions["queues"].as_array().expect("queues");
    for queue in queues {
        let mut arguments = queue["arguments"].clone();
        if let Some(key) = arguments.get_mut("x-dead-letter-routing-key") {
            *key = Value::from(rename(key.as_str().expect("a queue name")));
        }
        assert_eq!(queue["arguments"]["x-queue-type"], "quorum");
        channel
            .queue_declare(
                rename(queue["name"].as_str().expect("a name"))
                    .as_str()
                    .into(),
                QueueDeclareOptions {
                    durable: queue["durable"] == true,
                    auto_delete: queue["auto_delete"] == true,
                    ..QueueDeclareOptions::default()
                },
                field_table(&arguments),
            )
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ accepts {}: {e}", queue["name"]));
    }
    for binding in definitions["bindings"].as_array().expect("bindings") {
        channel
            .queue_bind(
                rename(binding["destination"].as_str().expect("a queue"))
                    .as_str()
                    .into(),
                rename(binding["source"].as_str().expect("an exchange"))
                    .as_str()
                    .into(),
                binding["routing_key"].as_str().expect("a key").into(),
                QueueBindOptions::default(),
                field_table(&binding["arguments"]),
            )
            .await
            .expect("RabbitMQ accepts the binding");
    }
    let _ = connection.close(200, "declared".into()).await;

    // Storehook's own declaration on top: `spawn` waits until it consumes `<prefix>.forward`,
    // which it only does after declaring every queue without an error.
    let app = ForwardApp::spawn(config.clone()).await;
    let mut declared: Vec<String> = queues
        .iter()
        .map(|queue| rename(queue["name"].as_str().expect("a name")))
        .collect();
    let mut expected = app.names.all_queues();
    declared.sort();
    expected.sort();
    assert_eq!(
        declared, expected,
        "the file holds exactly storehook's queues"
    );
    app.cleanup().await;
}

/// The compose set-up's RabbitMQ pieces on a real node of its own: `storehook.conf` (its
/// definitions folder pointed at a copy of `definitions.json` and `compose-users.json`) imports
/// the topology and the `storehook` user at boot; storehook then connects as that user and
/// consumes from the imported queues, redeclaring them without a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_storehook_conf_imports_the_definitions_at_boot() {
    let settings = read("deploy/rabbitmq/storehook.conf");
    let topology = read("deploy/rabbitmq/definitions.json");
    let users = read("deploy/rabbitmq/compose-users.json");
    let node = tokio::task::spawn_blocking(move || {
        PrivateNode::start_with(|dir| {
            let definitions = dir.join("definitions.d");
            std::fs::create_dir(&definitions).expect("a definitions folder");
            std::fs::write(definitions.join("20-topology.json"), topology).expect("writes");
            std::fs::write(definitions.join("10-users.json"), users).expect("writes");
            let folder = definitions.to_str().expect("a UTF-8 path");
            assert!(settings.contains("/etc/rabbitmq/definitions.d"));
            settings.replace("/etc/rabbitmq/definitions.d", folder)
        })
    })
    .await
    .expect("the node starts");
    let url = format!("amqp://storehook:storehook@127.0.0.1:{}/%2f", node.port);

    let mut config = ForwardConfig::new(Vec::new(), "");
    config.prefix = "storehook".to_owned();
    config.amqp_url = url.clone();
    let names = config.names("sqlite://unused.db");
    // Imported before any storehook ran.
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("the storehook user from the definitions logs in");
    for queue in names.all_queues() {
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{queue} was imported at boot: {e}"));
    }
    let _ = connection.close(200, "checked".into()).await;

    let app = ForwardApp::spawn(config).await;
    let _ = app.stop().await;
    drop(node);
}

/// Walks `Settings`' `Deserialize` implementation and records the path of every field it asks
/// for: the configuration keys as the code defines them, whatever section is added later.
struct KeyRecorder<'a> {
    path: String,
    keys: &'a RefCell<BTreeSet<String>>,
    sections: &'a RefCell<BTreeSet<String>>,
}

impl KeyRecorder<'_> {
    fn child(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }
}

type DeError = de::value::Error;

struct Empty;

impl<'de> SeqAccess<'de> for Empty {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        Ok(None)
    }
}

impl<'de> MapAccess<'de> for Empty {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _seed: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("no value"))
    }
}

struct Fields<'a> {
    recorder: &'a KeyRecorder<'a>,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some(field);
        seed.deserialize((*field).into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let path = self.recorder.child(self.current.unwrap_or_default());
        self.recorder.keys.borrow_mut().insert(path.clone());
        seed.deserialize(KeyRecorder {
            path,
            keys: self.recorder.keys,
            sections: self.recorder.sections,
        })
    }
}

macro_rules! plain {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for KeyRecorder<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom(format!(
            "{}: a self-describing value",
            self.path
        )))
    }

    plain! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_u64(1),
        deserialize_i16 => visit_u64(1),
        deserialize_i32 => visit_u64(1),
        deserialize_i64 => visit_u64(1),
        deserialize_u8 => visit_u64(1),
        deserialize_u16 => visit_u64(1),
        deserialize_u32 => visit_u64(1),
        deserialize_u64 => visit_u64(1),
        deserialize_f32 => visit_f64(1.0),
        deserialize_f64 => visit_f64(1.0),
        deserialize_char => visit_char('a'),
        // Durations are text too: "1s" parses as one.
        deserialize_str => visit_str("1s"),
        deserialize_string => visit_str("1s"),
        deserialize_bytes => visit_bytes(b"1"),
        deserialize_byte_buf => visit_bytes(b"1"),
        deserialize_option => visit_none(),
        deserialize_unit => visit_unit(),
        deserialize_ignored_any => visit_unit(),
        deserialize_identifier => visit_str("1s"),
        deserialize_seq => visit_seq(Empty),
        deserialize_map => visit_map(Empty),
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_seq(Empty)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_seq(Empty)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if !self.path.is_empty() {
            self.sections.borrow_mut().insert(self.path.clone());
        }
        visitor.visit_map(Fields {
            recorder: &self,
            fields: fields.iter(),
            current: None,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let first: de::value::StrDeserializer<'_, DeError> = variants
            .first()
            .copied()
            .unwrap_or_default()
            .into_deserializer();
        visitor.visit_enum(first)
    }
}

/// Every configuration key (`section.key`), from the code.
fn configuration_keys() -> BTreeSet<String> {
    let keys = RefCell::new(BTreeSet::new());
    let sections = RefCell::new(BTreeSet::new());
    let recorder = KeyRecorder {
        path: String::new(),
        keys: &keys,
        sections: &sections,
    };
    <Settings as serde::Deserialize>::deserialize(recorder).expect("Settings deserializes");
    let sections = sections.into_inner();
    keys.into_inner()
        .into_iter()
        .filter(|key| !sections.contains(key))
        .collect()
}

fn operations_doc() -> String {
    read("docs/operations.md")
}

#[test]
fn operations_documents_every_configuration_key_with_its_variable_and_default() {
    let doc = operations_doc();
    let keys = configuration_keys();
    assert!(keys.contains("server.shutdown_timeout"), "{keys:?}");
    assert!(keys.contains("forward.timeout"), "{keys:?}");
    let mut missing = Vec::new();
    for key in &keys {
        let Some(row) = doc.lines().find(|line| line.contains(&format!("`{key}`"))) else {
            missing.push(format!("{key}: not documented"));
            continue;
        };
        if key.contains('.') {
            let variable = format!("STOREHOOK__{}", key.replace('.', "__").to_uppercase());
            if !row.contains(&variable) {
                missing.push(format!("{key}: its row does not name {variable}"));
            }
        }
    }
    // The defaults of the fixed sections, as written in the built-in TOML.
    let defaults: toml_like::Defaults = toml_like::parse(storehook::configuration::defaults_toml());
    for (key, value) in defaults {
        let Some(row) = doc.lines().find(|line| line.contains(&format!("`{key}`"))) else {
            continue;
        };
        if !row.contains(&format!("`{value}`")) {
            missing.push(format!(
                "{key}: its row does not show the default `{value}`"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/operations.md:\n{}",
        missing.join("\n")
    );
}

/// Just enough TOML for the defaults: `[section]` headers and `key = value` lines.
mod toml_like {
    pub type Defaults = Vec<(String, String)>;

    pub fn parse(text: &str) -> Defaults {
        let mut section = String::new();
        let mut defaults = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, value)) = line.split_once('=') {
                defaults.push((format!("{section}.{}", key.trim()), value.trim().to_owned()));
            }
        }
        defaults
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_documents_every_metric() {
    // Both roles, so that every metric is registered.
    let mut config = ForwardConfig::new(Vec::new(), "");
    config.ingest = true;
    let app = ForwardApp::spawn(config).await;
    let exposition = reqwest::get(format!("{}/metrics", app.address))
        .await
        .expect("storehook answers")
        .text()
        .await
        .expect("a body");
    let doc = operations_doc();
    let mut names = Vec::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                let exposed = if kind == "counter" {
                    format!("{name}_total")
                } else {
                    name.to_owned()
                };
                names.push(exposed);
            }
        }
    }
    assert!(names.len() >= 10, "{exposition}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !doc.contains(&format!("`{name}")))
        .collect();
    app.cleanup().await;
    assert!(missing.is_empty(), "docs/operations.md lacks {missing:?}");
}
