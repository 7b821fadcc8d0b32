// Validates `helm template` output of the octet chart offline:
//  1. every object against the Kubernetes JSON schemas (npm kubernetes-models, and
//     @kubernetes-models/prometheus-operator for the ServiceMonitor), strictly: unknown fields are
//     errors, as with `kubectl apply --validate=strict`;
//  2. the chart's own promises (probes, security context, grace period, OpenMP, references).
// Usage:
//   node validate_k8s.mjs --tools DIR --render FILE [--expect Kind,Kind...] [--external NAME,...]
//        [--assert Kind:dotted.path=JSON]...
//        check one rendered manifest (--external: objects it may reference but not render;
//        --assert: a value the render must have)
//   node validate_k8s.mjs --tools DIR --self-test FILE    the checks must reject broken variants
//   node validate_k8s.mjs --tools DIR --values-doc FILE   every value in values.yaml is documented
// DIR is where tests/deploy/package.json was installed (node_modules inside).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const tools = opt("--tools") && resolve(opt("--tools"));
if (!tools) {
  console.error("validate_k8s: --tools DIR is required");
  process.exit(2);
}
const YAML = createRequire(join(tools, "package.json"))("yaml");

// ---- schema validation ----------------------------------------------------------------------
const modelCache = new Map();
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!modelCache.has(key)) {
    let file;
    if (apiVersion === "monitoring.coreos.com/v1") {
      file = join(tools, "node_modules/@kubernetes-models/prometheus-operator", apiVersion, `${kind}.js`);
    } else {
      // "v1" is the core group; "apps/v1" is <group>/<version>.
      file = join(tools, "node_modules/kubernetes-models", apiVersion, `${kind}.js`);
    }
    let cls;
    try {
      cls = (await import(pathToFileURL(file).href))[kind];
    } catch (e) {
      cls = undefined;
    }
    modelCache.set(key, cls);
  }
  return modelCache.get(key);
}

function schemaErrors(Cls, obj) {
  try {
    new Cls(obj).validate();
    return [];
  } catch (e) {
    if (!e.errors) throw e;
    return e.errors.map((x) => ({ path: x.instancePath, msg: `${x.instancePath || "/"} ${x.message}` }));
  }
}

const ptr = (parts) => parts.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");

function setAt(obj, parts, value) {
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p];
  o[parts[parts.length - 1]] = value;
}

// The compiled schemas, like Kubernetes' OpenAPI, let unknown fields through. Find them by
// probing: replace a field's value with values no schema type accepts together (a known field
// rejects at least one of `true` and `[[]]`: objects, strings, numbers and arrays of objects or
// strings reject `true`; booleans reject `[[]]`). A field whose probe raises no error at its own
// path is not in the schema. Map entries (labels, ConfigMap data) are typed, so they pass.
function unknownFields(Cls, obj) {
  const found = [];
  const walk = (value, parts) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, [...parts, i]));
      return;
    }
    if (!value || typeof value !== "object") return;
    for (const key of Object.keys(value)) {
      const here = [...parts, key];
      const p = ptr(here);
      const known = [true, [[]]].some((probe) => {
        const copy = structuredClone(obj);
        setAt(copy, here, probe);
        return schemaErrors(Cls, copy).some((e) => e.path === p || e.path.startsWith(p + "/"));
      });
      if (!known) {
        found.push(`${p} is not a field of ${obj.apiVersion} ${obj.kind}`);
        continue; // nothing below an unknown field can be checked
      }
      walk(value[key], here);
    }
  };
  walk(obj, []);
  return found;
}

async function validateSchemas(docs) {
  const errors = [];
  for (const d of docs) {
    const where = `${d.kind}/${d.metadata?.name}`;
    const Cls = await modelFor(d.apiVersion, d.kind);
    if (!Cls) {
      errors.push(`${where}: no schema for ${d.apiVersion} ${d.kind}`);
      continue;
    }
    for (const e of schemaErrors(Cls, d)) errors.push(`${where}: schema: ${e.msg}`);
    for (const e of unknownFields(Cls, d)) errors.push(`${where}: schema: ${e}`);
  }
  return errors;
}

// ---- the chart's promises --------------------------------------------------------------------
const flag = (argv, name) => {
  const a = (argv || []).filter((x) => x.startsWith(`--${name}=`));
  return a.length ? a[a.length - 1].slice(name.length + 3) : undefined;
};
// Objects the user provides (an existing PVC), named with --external A,B.
const external = (opt("--external") || "").split(",").filter(Boolean);
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);

function chartErrors(docs, expectKinds) {
  const errors = [];
  const err = (m) => errors.push(m);
  const byKind = (k) => docs.filter((d) => d.kind === k);
  if (expectKinds) {
    const got = [...new Set(docs.map((d) => d.kind))].sort();
    const want = [...new Set(expectKinds)].sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) err(`kinds: rendered ${got} but expected ${want}`);
  }
  const deps = byKind("Deployment");
  if (deps.length !== 1) {
    err(`expected exactly one Deployment, got ${deps.length}`);
    return errors;
  }
  const dep = deps[0];
  const pod = dep.spec?.template?.spec || {};
  const podLabels = dep.spec?.template?.metadata?.labels || {};
  if (!matches(dep.spec?.selector?.matchLabels, podLabels)) err("Deployment selector does not match its pod labels");

  // Security context: non-root, seccomp RuntimeDefault, and for every container a read-only root,
  // no privilege escalation and no capabilities.
  const psc = pod.securityContext || {};
  if (psc.runAsNonRoot !== true) err("pod securityContext.runAsNonRoot is not true");
  if (!(Number.isInteger(psc.runAsUser) && psc.runAsUser > 0)) err("pod securityContext.runAsUser is not a non-zero uid");
  if (psc.seccompProfile?.type !== "RuntimeDefault") err("pod seccompProfile is not RuntimeDefault");
  const containers = [...(pod.initContainers || []), ...(pod.containers || [])];
  for (const c of containers) {
    const sc = c.securityContext || {};
    const w = `container ${c.name}`;
    if (sc.readOnlyRootFilesystem !== true) err(`${w}: readOnlyRootFilesystem is not true`);
    if (sc.allowPrivilegeEscalation !== false) err(`${w}: allowPrivilegeEscalation is not false`);
    if (!(sc.capabilities?.drop || []).includes("ALL")) err(`${w}: capabilities do not drop ALL`);
    if ((sc.capabilities?.add || []).length) err(`${w}: adds capabilities`);
    if (sc.privileged) err(`${w}: privileged`);
    if (sc.runAsNonRoot === false || sc.runAsUser === 0) err(`${w}: may run as root`);
    for (const r of ["requests", "limits"])
      for (const k of ["cpu", "memory"])
        if (!c.resources?.[r]?.[k]) err(`${w}: no resources.${r}.${k}`);
  }

  const server = (pod.containers || []).find((c) => c.name === "octet-server");
  if (!server) {
    err("no octet-server container");
    return errors;
  }
  const grpcPort = Number(flag(server.args, "grpc_port"));
  const metricsPort = Number(flag(server.args, "metrics_port"));
  const drain = Number(flag(server.args, "drain_grace_seconds"));
  const portOf = (name) => (server.ports || []).find((p) => p.name === name)?.containerPort;
  if (!grpcPort || portOf("grpc") !== grpcPort) err(`container port "grpc" (${portOf("grpc")}) is not --grpc_port (${grpcPort})`);
  if (!metricsPort || portOf("metrics") !== metricsPort) err(`container port "metrics" (${portOf("metrics")}) is not --metrics_port (${metricsPort})`);
  if (flag(server.args, "model_repository") !== "/models") err("--model_repository is not /models");
  for (const f of ["max_message_bytes", "poll_interval_seconds", "drain_grace_seconds"])
    if (!/^[0-9]+$/.test(flag(server.args, f) || "")) err(`--${f}=${flag(server.args, f)} is not a plain integer`);
  for (const f of ["cost_per_core_hour", "cost_per_gib_hour"])
    if (!/^[0-9]+(\.[0-9]+)?$/.test(flag(server.args, f) || "")) err(`--${f}=${flag(server.args, f)} is not a plain decimal`);

  // Probes: grpc.health.v1 on the health port, nothing else. That is the gRPC port, or with TLS
  // on the plaintext --health_port (kubelet gRPC probes cannot do TLS).
  const tls = flag(server.args, "tls_cert_file") !== undefined;
  const healthFlag = flag(server.args, "health_port");
  if (tls && healthFlag === undefined) err("TLS is on (--tls_cert_file) but there is no --health_port for the plaintext probes");
  if (healthFlag !== undefined && portOf("health") !== Number(healthFlag)) err(`container port "health" (${portOf("health")}) is not --health_port (${healthFlag})`);
  const healthPort = healthFlag !== undefined ? Number(healthFlag) : grpcPort;
  if (healthFlag !== undefined && [grpcPort, metricsPort].includes(healthPort)) err(`--health_port ${healthPort} collides with the gRPC or metrics port`);
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const p = server[probe];
    if (!p) { err(`octet-server has no ${probe}`); continue; }
    if (!p.grpc) err(`${probe} is not a grpc probe`);
    else if (p.grpc.port !== healthPort) err(`${probe} asks port ${p.grpc.port}, not the health port ${healthPort}`);
    for (const other of ["httpGet", "tcpSocket", "exec"]) if (p[other]) err(`${probe} uses ${other}`);
  }

  // Termination: the kubelet must wait for preStop + the whole drain before SIGKILL.
  const preStop = server.lifecycle?.preStop?.exec?.command;
  const sleep = preStop ? Number(preStop[preStop.length - 1]) : 0;
  const tgps = pod.terminationGracePeriodSeconds;
  if (!Number.isInteger(drain)) err("no --drain_grace_seconds");
  if (!(tgps > sleep + drain)) err(`terminationGracePeriodSeconds ${tgps} is not above preStop ${sleep} s + drain ${drain} s`);

  const env = Object.fromEntries((server.env || []).map((e) => [e.name, e]));
  if (env.OMP_WAIT_POLICY?.value !== "PASSIVE") err("OMP_WAIT_POLICY is not PASSIVE");
  if (env.OMP_NUM_THREADS && env.OMP_NUM_THREADS.valueFrom?.resourceFieldRef?.resource !== "limits.cpu")
    err("OMP_NUM_THREADS does not follow limits.cpu");

  // Volumes: /tmp is an emptyDir; every mount names a volume; /models is what models.source says.
  const vols = Object.fromEntries((pod.volumes || []).map((v) => [v.name, v]));
  for (const c of containers)
    for (const m of c.volumeMounts || [])
      if (!vols[m.name]) err(`container ${c.name} mounts missing volume ${m.name}`);
  const tmp = (server.volumeMounts || []).find((m) => m.mountPath === "/tmp");
  if (!tmp || !vols[tmp.name]?.emptyDir) err("octet-server has no emptyDir at /tmp");
  const modelsMount = (server.volumeMounts || []).find((m) => m.mountPath === "/models");
  if (modelsMount) {
    const v = vols[modelsMount.name];
    if (v?.persistentVolumeClaim && !modelsMount.readOnly) err("model PVC is mounted writable");
    if (v?.emptyDir && !(pod.initContainers || []).length) err("empty /models volume with no init container to fill it");
  }

  // References between objects.
  const names = (k) => byKind(k).map((d) => d.metadata.name);
  for (const v of Object.values(vols)) {
    if (v.configMap && !names("ConfigMap").includes(v.configMap.name)) err(`volume ${v.name}: no ConfigMap ${v.configMap.name}`);
    const claim = v.persistentVolumeClaim?.claimName;
    // An existing claim (--external NAME) is the user's; anything else must be rendered.
    if (claim && !names("PersistentVolumeClaim").includes(claim) && !external.includes(claim))
      err(`volume ${v.name}: no PersistentVolumeClaim ${claim}`);
  }
  const sa = pod.serviceAccountName;
  if (names("ServiceAccount").length && !names("ServiceAccount").includes(sa)) err(`serviceAccountName ${sa} is not the rendered ServiceAccount`);

  for (const svc of byKind("Service")) {
    if (!matches(svc.spec.selector, podLabels)) err(`Service ${svc.metadata.name} does not select the pods`);
    const ports = Object.fromEntries(svc.spec.ports.map((p) => [p.name, p]));
    if (!ports.grpc || ports.grpc.targetPort !== "grpc") err("Service has no grpc port targeting the container's grpc port");
    if (!ports.metrics || ports.metrics.targetPort !== "metrics") err("Service has no metrics port targeting the container's metrics port");
  }
  if (!byKind("Service").length) err("no Service");
  const hpas = byKind("HorizontalPodAutoscaler");
  for (const h of hpas) {
    if (h.spec.scaleTargetRef.kind !== "Deployment" || h.spec.scaleTargetRef.name !== dep.metadata.name)
      err("HPA does not target the Deployment");
    if (!h.spec.metrics.some((m) => m.type === "Resource" && m.resource.name === "cpu")) err("HPA has no CPU metric");
  }
  if (hpas.length && dep.spec.replicas !== undefined) err("Deployment sets replicas although an HPA owns them");
  if (!hpas.length && !dep.spec.replicas) err("no HPA and no replicas");
  for (const pdb of byKind("PodDisruptionBudget"))
    if (!matches(pdb.spec.selector.matchLabels, podLabels)) err("PodDisruptionBudget does not select the pods");
  for (const sm of byKind("ServiceMonitor")) {
    const svc = byKind("Service").find((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
    if (!svc) err("ServiceMonitor selects no rendered Service");
    else if (!sm.spec.endpoints.every((e) => svc.spec.ports.some((p) => p.name === e.port)))
      err("ServiceMonitor endpoint port is not a Service port");
  }
  return errors;
}

function loadDocs(file) {
  return YAML.parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: YAML: ${d.errors[0].message}`);
      return d.toJS();
    })
    .filter((d) => d);
}

// --assert Kind:dotted.path=JSON (repeatable): one rendered value the values file must produce.
function assertions(docs) {
  const errors = [];
  args.forEach((a, i) => {
    if (a !== "--assert") return;
    const spec = args[i + 1];
    const m = /^([A-Za-z]+):([^=]+)=(.*)$/.exec(spec);
    if (!m) { errors.push(`bad --assert ${spec}`); return; }
    const [, kind, path, want] = m;
    const doc = docs.find((d) => d.kind === kind);
    let v = doc;
    for (const p of path.split(".")) v = v === undefined ? undefined : v[p];
    if (JSON.stringify(v) !== JSON.stringify(JSON.parse(want)))
      errors.push(`${kind} ${path} is ${JSON.stringify(v)}, expected ${want}`);
  });
  return errors;
}

// ---- values.yaml documentation ----------------------------------------------------------------
// Every value (a leaf: scalar, list or empty map) needs a comment above it or on its line, or on
// an enclosing key (a Kubernetes object such as securityContext is documented as a whole).
function undocumentedValues(file) {
  const doc = YAML.parseDocument(readFileSync(file, "utf8"));
  const missing = [];
  const walk = (map, path, inherited) => {
    map.items.forEach((pair, i) => {
      const key = String(pair.key.value);
      const here = path ? `${path}.${key}` : key;
      // The parser hangs the comment above a map's first key on the map (or the document).
      const own = Boolean(pair.key.commentBefore || pair.key.comment || pair.value?.comment ||
        (i === 0 && (map.commentBefore || (path === "" && doc.commentBefore))));
      if (YAML.isMap(pair.value) && pair.value.items.length) walk(pair.value, here, inherited || own);
      else if (!own && !inherited) missing.push(here);
    });
  };
  walk(doc.contents, "", false);
  return missing;
}

// ---- main -------------------------------------------------------------------------------------
async function main() {
  if (opt("--values-doc")) {
    const missing = undocumentedValues(opt("--values-doc"));
    if (missing.length) {
      console.log(`FAIL: values without a comment: ${missing.join(", ")}`);
      return 1;
    }
    console.log("values.yaml: every value documented");
    return 0;
  }
  if (opt("--self-test")) return selfTest(loadDocs(opt("--self-test")));
  const file = opt("--render");
  const docs = loadDocs(file);
  const expect = opt("--expect")?.split(",");
  const errors = [...(await validateSchemas(docs)), ...chartErrors(docs, expect), ...assertions(docs)];
  if (errors.length) {
    console.log(errors.map((e) => `FAIL: ${file}: ${e}`).join("\n"));
    return 1;
  }
  console.log(`${file}: ${docs.length} objects (${docs.map((d) => d.kind).join(", ")}) valid`);
  return 0;
}

// The checks above must fail on broken manifests, or they prove nothing.
async function selfTest(docs) {
  const server = (ds) => ds.find((d) => d.kind === "Deployment").spec.template.spec.containers[0];
  const podSpec = (ds) => ds.find((d) => d.kind === "Deployment").spec.template.spec;
  const cases = {
    "unknown field (typo grpcc)": (ds) => { const p = server(ds).livenessProbe; p.grpcc = p.grpc; delete p.grpc; },
    "unknown top-level spec field": (ds) => { podSpec(ds).hostnetwork = true; },
    "wrong type (port as string)": (ds) => { server(ds).ports[0].containerPort = "8500"; },
    "bad quantity": (ds) => { server(ds).resources.limits.memory = "1 GB"; },
    "missing required field (container name)": (ds) => { delete server(ds).name; },
    "HTTP readiness probe": (ds) => { server(ds).readinessProbe = { httpGet: { path: "/", port: 8502 } }; },
    "probe on the metrics port": (ds) => { server(ds).livenessProbe.grpc.port = 8502; },
    "TLS without a plaintext health port": (ds) => { server(ds).args.push("--tls_cert_file=/etc/octet/tls/tls.crt"); },
    "writable root filesystem": (ds) => { server(ds).securityContext.readOnlyRootFilesystem = false; },
    "capabilities kept": (ds) => { server(ds).securityContext.capabilities.drop = []; },
    "privilege escalation": (ds) => { server(ds).securityContext.allowPrivilegeEscalation = true; },
    "runs as root": (ds) => { podSpec(ds).securityContext.runAsUser = 0; },
    "no seccomp": (ds) => { delete podSpec(ds).securityContext.seccompProfile; },
    "grace shorter than drain": (ds) => { podSpec(ds).terminationGracePeriodSeconds = 20; },
    "spinning OpenMP": (ds) => { server(ds).env = server(ds).env.filter((e) => e.name !== "OMP_WAIT_POLICY"); },
    "no memory limit": (ds) => { delete server(ds).resources.limits.memory; },
    "float-formatted flag": (ds) => { server(ds).args = server(ds).args.map((a) => a.startsWith("--max_message_bytes=") ? "--max_message_bytes=6.7108864e+07" : a); },
    "Service selects nothing": (ds) => { ds.find((d) => d.kind === "Service").spec.selector = { app: "other" }; },
  };
  let failed = 0;
  for (const [name, mutate] of Object.entries(cases)) {
    const ds = structuredClone(docs);
    mutate(ds);
    const errors = [...(await validateSchemas(ds)), ...chartErrors(ds)];
    if (errors.length) console.log(`  rejected ${name}: ${errors[0]}`);
    else { console.log(`FAIL: self-test: ${name} was accepted`); failed++; }
  }
  const clean = [...(await validateSchemas(docs)), ...chartErrors(docs)];
  if (clean.length) { console.log(`FAIL: self-test: the unmodified render fails: ${clean[0]}`); failed++; }
  console.log(`self-test: ${Object.keys(cases).length - failed} of ${Object.keys(cases).length} broken variants rejected`);
  return failed ? 1 : 0;
}

process.exit(await main());
