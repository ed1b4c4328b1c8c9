"""Flow parameters: documented pydantic models (they become the Prefect UI's run form)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from iovolc.batches import OUT_OF_REACH_COST

#: frames per calibrate/extract task in a backfill's perijoves (docs/decisions.md)
BACKFILL_FRAMES_PER_TASK = 300


class Sources(BaseModel):
    """Where data comes from and goes to. Empty = the settings (env/file/default)."""

    archive_url: str | None = Field(
        None, description="Archive root holding PDS3 volumes JNOJIR_xnnn/ (file://, s3://, "
        "https://). Empty: IOVOLC_ARCHIVE_URL / config file.")
    kernels_url: str | None = Field(
        None, description="Kernel root laid out like NAIF's JUNO/kernels/ (lsk pck fk ik sclk "
        "spk ck). Empty: IOVOLC_KERNELS_URL / config file.")
    store_url: str | None = Field(
        None, description="Object store root for products, kernels, catalogs (file:// or "
        "s3://). Empty: IOVOLC_STORE_URL / config file / ./iovolc-store.")
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (e.g. http://127.0.0.1:8333). Credentials "
        "come only from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).")


class Thresholds(BaseModel):
    """Hotspot detection thresholds (docs/decisions.md)."""

    k_sigma: float = Field(5.0, gt=0, description="Detection threshold: residual above "
                           "k x local robust sigma (published: median + 5 x MAD).")
    confident_snr: float = Field(8.0, gt=0, description="Below this peak SNR a detection "
                                 "is flagged LOW_CONFIDENCE.")
    high_emission_deg: float = Field(75.0, gt=0, le=90, description="Detections at larger "
                                     "emission angles are flagged HIGH_EMISSION.")


class PerijoveParams(BaseModel):
    """Process one perijove (or several) end to end."""

    perijoves: list[int] = Field(default_factory=lambda: [57], description="Perijove numbers "
                                 "(orbit = PJ; an Io pass hours before PJ N is orbit N).")
    sources: Sources = Field(default_factory=Sources)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    force: bool = Field(False, description="Re-process even where outputs exist.")
    frames_per_task: int = Field(48, ge=1, le=2000, description="Frames per task "
                                 "(whole observation sequences are kept together; in "
                                 "calibration a frame Io cannot reach counts "
                                 f"{OUT_OF_REACH_COST:g}).")
    publish: bool = Field(True, description="Publish a catalog version at the end. A "
                          "backfill turns it off for its perijoves and publishes once, "
                          "after the last one (one version, not one per perijove).")
    stage_subflows: bool = Field(True, description="Run ingest, calibrate and extract as "
                                 "subflows, one run per stage in the UI. Off: their tasks "
                                 "run in this run itself, saving three flow runs (~0.5 s "
                                 "of CPU) per perijove; a backfill turns it off. A Dask "
                                 "task runner (IOVOLC_DASK_ADDRESS) always uses subflows.")


class IngestParams(BaseModel):
    """Discover new products in the archive and land them in the store."""

    perijoves: list[int] | None = Field(None, description="Only these perijoves; empty: "
                                        "everything new in the archive.")
    sources: Sources = Field(default_factory=Sources)
    force: bool = Field(False, description="Re-ingest products already ingested.")
    products_per_task: int = Field(200, ge=1, le=5000, description="Products per ingest "
                                   "task, in even batches (each batch verifies the kernels "
                                   "it is the first to name in one SPICE process).")


class BackfillParams(BaseModel):
    """Re-process a range of past perijoves."""

    first_perijove: int = Field(57, ge=0, le=120)
    last_perijove: int = Field(58, ge=0, le=120)
    max_concurrent: int = Field(6, ge=1, le=32, description="Perijoves processed at once "
                                "(local subflows); against a server the deployment's "
                                "concurrency limit throttles the runs. Use about three "
                                "times the worker processes or Dask workers (a perijove's "
                                "serial steps leave workers idle): 6 for the default 2.")
    mode: str = Field("auto", pattern="^(auto|subflows|deployments)$", description="auto: "
                      "deployment runs when a process-perijove deployment exists on the "
                      "server, else local subflows.")
    deployment: str = Field("process-perijove/process-perijove", description="Deployment "
                            "(flow/deployment) to run per perijove in 'deployments' mode.")
    stage_subflows: bool = Field(False, description="Run each perijove's ingest, "
                                 "calibrate and extract as subflows (one run per stage, "
                                 "as a perijove run launched alone has). Off: their tasks "
                                 "sit in the perijove's run, on the settings' task "
                                 "runner, three flow runs fewer per perijove (~0.5 s of "
                                 "CPU on a 2-core machine). With a Dask address the "
                                 "stages are always subflows.")
    sources: Sources = Field(default_factory=Sources)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    force: bool = False
    frames_per_task: int = Field(BACKFILL_FRAMES_PER_TASK, ge=1, le=2000, description=(
        "Frames per calibrate and extract task in each perijove. Larger than a lone "
        "perijove run's: the perijoves run at once keep the workers busy, and every "
        "task run costs the Prefect server and this flow CPU and loads the kernels."))
