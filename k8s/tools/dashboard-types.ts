// The type every dashboard JSON file is checked against (k8s/tools/dashboards.mjs writes
// `export const dashboard: CheckedDashboard = <the JSON>;` and runs `tsc --noEmit --strict`).
// Everything here is assembled from the types Grafana publishes in npm @grafana/schema, which
// are generated from its dashboard kind; tsc's excess-property check then refuses a misspelt or
// unknown key at any depth, and a wrong type or enum value, in the parts those types describe.
//
// What the assembly adds, and why:
// - `Json<T>`: the published types use TypeScript enums (FieldColorModeId, ThresholdsMode,
//   MappingType, LegendDisplayMode, …); a JSON file writes their values as plain strings, which
//   TypeScript does not accept for a string enum. `Json<T>` turns every string enum into the
//   union of its values; numeric enums already accept their members' numbers.
// - Panels by type: the generic Panel types `options` as any record, `fieldConfig.defaults.custom`
//   as any record and `targets` as any records. Each panel type used here gets the options and
//   field config of its own plugin (the panelcfg types of the same package), and every target is
//   a Prometheus query. A panel type not listed here is refused: add its panelcfg types first.
// - Prometheus queries: @grafana/schema published PrometheusDataQuery until 10.4 (later it moved
//   into @grafana/prometheus, which needs React and Grafana's UI packages), so it comes from
//   @grafana/schema 10.4.19 under the npm alias grafana-schema-prometheus-query.
// - Annotations: the query is the `target` (AnnotationQuery<PrometheusDataQuery>), and the
//   Prometheus data source reads four fields of its own beside it, which the published
//   AnnotationQuery does not declare (grafana/grafana,
//   packages/grafana-prometheus/src/components/AnnotationQueryEditor.tsx): PromAnnotationFields.
import type {
  AnnotationQuery,
  Dashboard,
  FieldConfig,
  FieldConfigSource,
  Panel,
  RowPanel,
} from "@grafana/schema";
import type {
  Options as StatOptions,
} from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";
import type {
  FieldConfig as TimeSeriesFieldConfig,
  Options as TimeSeriesOptions,
} from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";
import type {
  PrometheusDataQuery,
} from "grafana-schema-prometheus-query/dist/esm/raw/composable/prometheus/dataquery/x/PrometheusDataQuery_types.gen";

/** T as a JSON file can write it: string enums become the union of their values. */
export type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

export type PromTarget = Json<PrometheusDataQuery>;

type Defaults<Custom> = Omit<Json<FieldConfig>, "custom"> & { custom?: Json<Custom> };

type FieldConfigOf<Custom> = Omit<Json<FieldConfigSource>, "defaults"> & {
  defaults: Defaults<Custom>;
};

/** A panel of plugin `Type` with that plugin's options and field config, querying Prometheus. */
type PanelOf<Type extends string, Options, Custom> = Omit<
  Json<Panel>,
  "type" | "options" | "fieldConfig" | "targets"
> & {
  type: Type;
  options?: Json<Options>;
  fieldConfig?: FieldConfigOf<Custom>;
  targets?: PromTarget[];
};

export type TimeSeriesPanel = PanelOf<"timeseries", TimeSeriesOptions, TimeSeriesFieldConfig>;
/** The stat panel has no custom field config. */
export type StatPanel = PanelOf<"stat", StatOptions, Record<string, never>>;
export type Row = Omit<Json<RowPanel>, "panels"> & { panels: AnyPanel[] };
export type AnyPanel = TimeSeriesPanel | StatPanel | Row;

/** Read by the Prometheus data source's annotation support, not declared by AnnotationQuery. */
export interface PromAnnotationFields {
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}

export type Annotation = Omit<Json<AnnotationQuery>, "target"> & {
  target?: PromTarget;
} & PromAnnotationFields;

export type CheckedDashboard = Omit<Json<Dashboard>, "panels" | "annotations"> & {
  panels?: AnyPanel[];
  annotations?: { list?: Annotation[] };
};
