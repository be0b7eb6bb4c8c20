/**
 * Throwaway certificates for TLS tests, made with the openssl command line at test time (no key
 * is ever committed): one CA and the certificates it signs, plus an unrelated CA. EC P-256 keys,
 * so generation takes milliseconds. Every openssl run is bounded.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** A certificate and its key: paths in the directory, and the PEM text of both. */
export interface CertFiles {
  certfile: string;
  keyfile: string;
  cert: string;
  key: string;
}

export interface Certs {
  /** The CA every other certificate here is signed by (except `wrongCa`). */
  ca: CertFiles;
  /** An unrelated CA: a client trusting only this one must refuse every server here. */
  wrongCa: CertFiles;
  /** CN and SAN localhost, SAN IP 127.0.0.1; valid now and for a year. */
  server: CertFiles;
  /** Like `server`, but valid only during 2020-01-01 (long expired). */
  expired: CertFiles;
  /** Valid now, but named other.example only (CN and SAN): a name mismatch for localhost. */
  otherName: CertFiles;
  /** A client certificate (CN petrel-client, extendedKeyUsage clientAuth). */
  client: CertFiles;
}

const TIMEOUT_MS = 15_000;

function openssl(dir: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // OPENSSL_CONF is cleared so the system's configuration cannot change what gets made.
    execFile("openssl", args, { cwd: dir, timeout: TIMEOUT_MS, env: { ...process.env, OPENSSL_CONF: "" } }, (err, _out, stderr) => {
      if (err) reject(new Error(`openssl ${args[0]} failed (${err.message}): ${stderr}`));
      else resolve();
    });
  });
}

/**
 * The whole configuration openssl gets: a minimal `openssl ca` setup (it, unlike `openssl x509`
 * in OpenSSL 3.0, can set a past validity with -startdate/-enddate) and one extension section
 * per kind of certificate.
 */
function config(dir: string): string {
  return `
[ca]
default_ca = petrel_ca

[petrel_ca]
database = ${dir}/index.txt
new_certs_dir = ${dir}/issued
serial = ${dir}/serial
default_md = sha256
default_days = 365
policy = any_name
unique_subject = no
copy_extensions = none
email_in_dn = no

[any_name]
commonName = supplied

[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[server_localhost]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[server_other]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
}

const read = (dir: string, name: string): CertFiles => {
  const certfile = path.join(dir, `${name}.crt`);
  const keyfile = path.join(dir, `${name}.key`);
  return { certfile, keyfile, cert: fs.readFileSync(certfile, "utf8"), key: fs.readFileSync(keyfile, "utf8") };
};

const newKey = (dir: string, name: string) =>
  openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`]);

/** A self-signed CA valid for ten years. */
async function makeCa(dir: string, conf: string, name: string, cn: string): Promise<CertFiles> {
  await newKey(dir, name);
  await openssl(dir, ["req", "-config", conf, "-new", "-x509", "-key", `${name}.key`, "-subj", `/CN=${cn}`,
    "-days", "3650", "-extensions", "ca_ext", "-out", `${name}.crt`]);
  return read(dir, name);
}

/** A certificate signed by `ca` with one of the config's extension sections and, when given, fixed dates. */
async function makeLeaf(dir: string, conf: string, ca: string, name: string, cn: string, ext: string,
  dates?: { start: string; end: string }): Promise<CertFiles> {
  await newKey(dir, name);
  await openssl(dir, ["req", "-config", conf, "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
  const validity = dates ? ["-startdate", dates.start, "-enddate", dates.end] : [];
  await openssl(dir, ["ca", "-config", conf, "-batch", "-notext", "-cert", `${ca}.crt`, "-keyfile", `${ca}.key`,
    "-extensions", ext, ...validity, "-in", `${name}.csr`, "-out", `${name}.crt`]);
  return read(dir, name);
}

/** Makes every certificate of `Certs` in `dir` (created if missing; the caller removes it). */
export async function makeCerts(dir: string): Promise<Certs> {
  fs.mkdirSync(path.join(dir, "issued"), { recursive: true });
  const conf = path.join(dir, "openssl.cnf");
  fs.writeFileSync(conf, config(dir));
  fs.writeFileSync(path.join(dir, "index.txt"), "");
  fs.writeFileSync(path.join(dir, "serial"), "1000\n");
  const ca = await makeCa(dir, conf, "ca", "Petrel Test CA");
  const wrongCa = await makeCa(dir, conf, "wrong-ca", "Petrel Unrelated CA");
  const server = await makeLeaf(dir, conf, "ca", "server", "localhost", "server_localhost");
  const expired = await makeLeaf(dir, conf, "ca", "expired", "localhost", "server_localhost",
    { start: "20200101000000Z", end: "20200102000000Z" });
  const otherName = await makeLeaf(dir, conf, "ca", "other-name", "other.example", "server_other");
  const client = await makeLeaf(dir, conf, "ca", "client", "petrel-client", "client");
  return { ca, wrongCa, server, expired, otherName, client };
}
