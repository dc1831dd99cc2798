/**
 * A small SVG line chart for benchmark timelines: panels stacked vertically, sharing the time axis,
 * each with step lines and a legend. No dependencies; the output is a file a browser or the README shows.
 */

export interface Series {
  label: string;
  color: string;
  /** [seconds, value] points; drawn as a step line (a value holds until the next point). */
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: readonly Series[];
  /** Vertical markers, e.g. the moments the load changed. */
  markers?: readonly { at: number; label: string }[];
}

const width = 960;
const panelHeight = 260;
const margin = { left: 64, right: 24, top: 48, bottom: 40 };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((x) => x >= v) ?? 10 * p;
}

function ticks(max: number, n = 5): number[] {
  return Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 1 ? 2 : 1);
}

export function lineChart(title: string, panels: readonly Panel[], xMax: number): string {
  const height = panels.length * panelHeight + 40;
  const plotW = width - margin.left - margin.right;
  const plotH = panelHeight - margin.top - margin.bottom;
  const x = (t: number) => margin.left + (Math.min(t, xMax) / xMax) * plotW;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  panels.forEach((panel, i) => {
    const top = 40 + i * panelHeight;
    const yMax = niceMax(Math.max(...panel.series.flatMap((s) => s.points.map((p) => p[1]))) * 1.05);
    const y = (v: number) => top + margin.top + plotH - (v / yMax) * plotH;
    parts.push(`<text x="${margin.left}" y="${top + 16}" font-size="13" font-weight="bold">${esc(panel.title)}</text>`);
    for (const v of ticks(yMax)) {
      parts.push(
        `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`,
        `<text x="${margin.left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`,
      );
    }
    for (const t of ticks(xMax, 10)) {
      parts.push(
        `<text x="${x(t)}" y="${top + margin.top + plotH + 16}" text-anchor="middle" fill="#555">${Math.round(t)}</text>`,
      );
    }
    parts.push(
      `<text x="${margin.left + plotW / 2}" y="${top + panelHeight - 6}" text-anchor="middle" fill="#555">seconds</text>`,
      `<text transform="translate(16 ${top + margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#555">${esc(panel.yLabel)}</text>`,
      `<rect x="${margin.left}" y="${top + margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    );
    for (const m of panel.markers ?? []) {
      parts.push(
        `<line x1="${x(m.at)}" x2="${x(m.at)}" y1="${top + margin.top}" y2="${top + margin.top + plotH}" stroke="#bbb" stroke-dasharray="3 3"/>`,
        `<text x="${x(m.at) + 3}" y="${top + margin.top + 12}" fill="#777">${esc(m.label)}</text>`,
      );
    }
    // Legend entries side by side, each as wide as its label (about 6.5 px per character at 12 px).
    let lx = margin.left + 10;
    panel.series.forEach((s) => {
      if (s.points.length === 0) return;
      let d = `M${x(s.points[0]![0]).toFixed(1)},${y(s.points[0]![1]).toFixed(1)}`;
      for (let j = 1; j < s.points.length; j++) {
        const [t, v] = s.points[j]!;
        d += ` H${x(t).toFixed(1)} V${y(v).toFixed(1)}`;
      }
      const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
      const ly = top + margin.top - 8;
      parts.push(
        `<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`,
        `<text x="${lx + 22}" y="${ly}">${esc(s.label)}</text>`,
      );
      lx += 22 + Math.ceil(s.label.length * 6.5) + 24;
    });
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
