/**
 * Serves GET /metrics (Prometheus text format) and GET /healthz: 200 when the bridge reaches its
 * database, 503 with the reason when not, for liveness probes and load balancers.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { describeError } from "../storage/describe-error.ts";
import { listening } from "./http-listen.ts";
import type { BridgeMetrics } from "./metrics.ts";
import type { Logger } from "./log.ts";

const HEALTH_TIMEOUT_MS = 2_000;

export class MetricsEndpoint {
  private readonly server: Server;

  constructor(
    private readonly metrics: BridgeMetrics,
    private readonly db: pg.Pool,
    private readonly log: Logger,
  ) {
    this.server = createServer((req, res) => {
      this.route(req.method, req.url).then(
        ({ status, type, body }) => res.writeHead(status, { "content-type": type }).end(body),
        (error) => {
          this.log.warn("metrics request failed", { url: req.url, error });
          res.writeHead(500).end("pg-offload: metrics failed\n");
        },
      );
    });
    this.server.on("error", (error) => this.log.error("metrics endpoint error", { error }));
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await listening(this.server, () => this.server.listen(port, host));
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async route(method: string | undefined, url: string | undefined) {
    if (method === "GET" && url === "/metrics") {
      const body = await this.metrics.registry.metrics();
      return { status: 200, type: this.metrics.registry.contentType, body };
    }
    if (method === "GET" && url === "/healthz") return this.health();
    return { status: 404, type: "text/plain", body: "not found: try /metrics or /healthz\n" };
  }

  private async health() {
    const type = "application/json";
    try {
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error("database did not answer in 2 s")),
          HEALTH_TIMEOUT_MS,
        ).unref(),
      );
      await Promise.race([this.db.query("SELECT 1"), timeout]);
      return { status: 200, type, body: JSON.stringify({ status: "ok" }) + "\n" };
    } catch (error) {
      const problem = describeError(error);
      return { status: 503, type, body: JSON.stringify({ status: "unhealthy", problem }) + "\n" };
    }
  }
}
