/* The public map page: ward polygons shaded by request count, request points, two charts.
 *
 * Data: {summary}  – counts per ward and per service over the whole window (and the window
 *                    the server picked when the URL gives none: the days up to the newest
 *                    request, so imported or demo data shows at once);
 *       {api}/areas.json?geometry=true&kind=ward – the ward polygons (GeoJSON geometries);
 *       {api}/requests.json?extensions=true       – the points (newest first, capped).
 * The URL query (?start=YYYY-MM-DD&end=YYYY-MM-DD&status=open|closed|all&service=CODE
 * &jurisdiction_id=ID) sets the filters and is kept in step with them.
 * Text from the API is always inserted as text (never as HTML).
 */
(function () {
  "use strict";

  var root = document.getElementById("app");
  var API = root.getAttribute("data-api");
  var SUMMARY = root.getAttribute("data-summary");
  var DAY = /^\d{4}-\d{2}-\d{2}$/;
  // YlOrRd (ColorBrewer), lightest first; NONE for wards without any request.
  var SHADES = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
  var NONE = "#f4f4f2";
  var POINT = { open: "#1c6dd0", closed: "#5f6b7a" };

  var params = new URLSearchParams(window.location.search);
  var state = {
    jurisdiction: params.get("jurisdiction_id") || "",
    service: params.get("service") || "",
    status: ["open", "closed", "all"].indexOf(params.get("status")) >= 0 ? params.get("status") : "open",
    start: DAY.test(params.get("start") || "") ? params.get("start") : "",
    end: DAY.test(params.get("end") || "") ? params.get("end") : ""
  };

  var ui = {
    form: document.getElementById("filters"),
    jurisdictionField: document.getElementById("jurisdiction-field"),
    jurisdiction: document.getElementById("f-jurisdiction"),
    service: document.getElementById("f-service"),
    status: document.getElementById("f-status"),
    start: document.getElementById("f-start"),
    end: document.getElementById("f-end"),
    reset: document.getElementById("f-reset"),
    line: document.getElementById("status-line")
  };

  // ---- helpers -------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function addDays(day, n) {
    var d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function when(w3c) {
    return w3c ? w3c.slice(0, 16).replace("T", " ") : "";
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) {
          var first = Array.isArray(body) && body.length ? body[0] : null;
          var text = first && first.description ? first.description : response.status + " " + response.statusText;
          throw new Error(text);
        }
        return body;
      });
    });
  }

  function say(text, isError) {
    ui.line.textContent = text;
    ui.line.className = isError ? "status-line error" : "status-line";
  }

  function shade(count, max) {
    if (!count) return NONE;
    var step = Math.max(1, Math.ceil(max / SHADES.length));
    return SHADES[Math.min(SHADES.length - 1, Math.floor((count - 1) / step))];
  }

  function option(select, value, label) {
    var node = el("option", null, label);
    node.value = value;
    select.appendChild(node);
    return node;
  }

  // ---- map -----------------------------------------------------------------------------

  var map = L.map("map", { zoomSnap: 0.25, minZoom: 3, attributionControl: true });
  map.attributionControl.setPrefix("Leaflet");
  map.setView([0, 0], 3);
  map.createPane("points").style.zIndex = "450";
  var wardLayer = null;
  var wardsOf = null; // jurisdiction whose wards are drawn
  var counts = {}; // ward code -> count
  var maxCount = 0;
  var pointLayer = L.layerGroup().addTo(map);

  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    this.box = el("div", "legend");
    return this.box;
  };
  legend.update = function (max) {
    var box = this.box;
    box.textContent = "";
    box.appendChild(el("strong", null, "Requests per ward"));
    var rows = [[NONE, "0"]];
    var step = Math.max(1, Math.ceil(max / SHADES.length));
    for (var i = 0; i < SHADES.length && i * step < Math.max(max, 1); i++) {
      var low = i * step + 1;
      var high = Math.min((i + 1) * step, Math.max(max, 1));
      rows.push([SHADES[i], low === high ? String(low) : low + "–" + high]);
    }
    rows.forEach(function (row) {
      var line = el("div");
      var swatch = el("span", "swatch");
      swatch.style.background = row[0];
      line.appendChild(swatch);
      line.appendChild(document.createTextNode(row[1]));
      box.appendChild(line);
    });
    ["open", "closed"].forEach(function (status) {
      var line = el("div");
      var dot = el("span", "dot");
      dot.style.background = POINT[status];
      line.appendChild(dot);
      line.appendChild(document.createTextNode(status + " request"));
      box.appendChild(line);
    });
  };
  legend.addTo(map);

  function wardStyle(feature) {
    var count = counts[feature.properties.code] || 0;
    return {
      className: "ward",
      color: "#4a5561",
      weight: 1,
      opacity: 0.9,
      fillColor: shade(count, maxCount),
      fillOpacity: 0.78
    };
  }

  function drawWards(areas) {
    if (wardLayer) map.removeLayer(wardLayer);
    var features = areas
      .filter(function (a) { return a.geometry; })
      .map(function (a) {
        return { type: "Feature", properties: { code: a.code, name: a.name }, geometry: a.geometry };
      });
    wardLayer = L.geoJSON({ type: "FeatureCollection", features: features }, {
      style: wardStyle,
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(function () {
          var p = feature.properties;
          return el("span", null, p.name + " (" + p.code + "): " + (counts[p.code] || 0));
        }, { sticky: true });
        layer.on("add", function () {
          var path = layer.getElement && layer.getElement();
          if (path) path.setAttribute("data-ward", feature.properties.code);
        });
      }
    }).addTo(map);
    if (features.length) map.fitBounds(wardLayer.getBounds(), { padding: [8, 8] });
  }

  function popup(item) {
    var box = el("div", "popup");
    box.appendChild(el("h2", null, item.service_name || item.service_code));
    var list = el("dl");
    var ext = item.extended_attributes || {};
    [
      ["Status", item.status],
      ["Requested", when(item.requested_datetime)],
      ["Updated", when(item.updated_datetime)],
      ["Address", item.address],
      ["Ward", ext.ward_name ? ext.ward_name + " (" + ext.ward + ")" : null],
      ["Request", item.service_request_id]
    ].forEach(function (row) {
      if (row[1] === null || row[1] === undefined || row[1] === "") return;
      list.appendChild(el("dt", null, row[0]));
      list.appendChild(el("dd", null, row[1]));
    });
    box.appendChild(list);
    return box;
  }

  function drawPoints(items) {
    pointLayer.clearLayers();
    var drawn = 0;
    items.forEach(function (item) {
      if (typeof item.lat !== "number" || typeof item.long !== "number") return;
      var marker = L.circleMarker([item.lat, item.long], {
        pane: "points",
        className: "request-point request-" + (item.status === "open" ? "open" : "closed"),
        radius: 4.5,
        color: "#ffffff",
        weight: 1,
        fillColor: POINT[item.status] || POINT.closed,
        fillOpacity: 0.9
      });
      marker.bindPopup(function () { return popup(item); });
      pointLayer.addLayer(marker);
      drawn += 1;
    });
    if (!wardLayer || !wardLayer.getLayers().length) {
      var bounds = L.latLngBounds([]);
      pointLayer.eachLayer(function (m) { bounds.extend(m.getLatLng()); });
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 14 });
    }
    return drawn;
  }

  // ---- charts --------------------------------------------------------------------------

  function barChart(id, color) {
    return new Chart(document.getElementById(id), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "Requests", data: [], backgroundColor: color }] },
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { beginAtZero: true, ticks: { precision: 0 } },
          y: { ticks: { autoSkip: false, font: { size: 11 } } }
        }
      }
    });
  }

  var serviceChart = barChart("chart-services", "#1c6dd0");
  var wardChart = barChart("chart-wards", "#f03b20");

  function short(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  function drawCharts(summary) {
    var services = summary.by_service
      .filter(function (s) { return s.count > 0; })
      .sort(function (a, b) { return b.count - a.count; })
      .slice(0, 15);
    serviceChart.data.labels = services.map(function (s) { return short(s.service_name, 34); });
    serviceChart.data.datasets[0].data = services.map(function (s) { return s.count; });
    serviceChart.update();
    var wards = summary.by_ward.slice().sort(function (a, b) { return b.count - a.count; });
    wardChart.data.labels = wards.map(function (w) { return short(w.name, 30); });
    wardChart.data.datasets[0].data = wards.map(function (w) { return w.count; });
    wardChart.data.datasets[0].backgroundColor = wards.map(function (w) {
      return w.count ? shade(w.count, maxCount) : "#d3d8de";
    });
    wardChart.update();
  }

  // ---- filters and loading -------------------------------------------------------------

  function fillControls(summary) {
    var everyone = summary.jurisdictions;
    ui.jurisdictionField.hidden = everyone.length < 2;
    ui.jurisdiction.textContent = "";
    everyone.forEach(function (j) { option(ui.jurisdiction, j.jurisdiction_id, j.name); });
    ui.jurisdiction.value = state.jurisdiction;
    ui.service.textContent = "";
    option(ui.service, "", "All services");
    summary.by_service
      .slice()
      .sort(function (a, b) { return a.service_name.localeCompare(b.service_name); })
      .forEach(function (s) { option(ui.service, s.service_code, short(s.service_name, 48)); });
    ui.service.value = state.service;
    ui.status.value = state.status;
    ui.start.value = state.start;
    ui.end.value = state.end;
  }

  function filterQuery(extra) {
    var q = new URLSearchParams(extra || {});
    if (state.jurisdiction) q.set("jurisdiction_id", state.jurisdiction);
    if (state.service) q.set("service_code", state.service);
    if (state.status !== "all") q.set("status", state.status);
    if (state.start) q.set("start_date", state.start);
    // end is an inclusive day; the API's end_date is an instant: the next local midnight.
    if (state.end) q.set("end_date", addDays(state.end, 1));
    return q;
  }

  function remember() {
    var q = new URLSearchParams();
    if (state.jurisdiction && !ui.jurisdictionField.hidden) q.set("jurisdiction_id", state.jurisdiction);
    if (state.service) q.set("service", state.service);
    if (state.status !== "open") q.set("status", state.status);
    q.set("start", state.start);
    q.set("end", state.end);
    window.history.replaceState(null, "", window.location.pathname + "?" + q.toString());
  }

  var loading = 0;

  function load() {
    var ticket = ++loading;
    document.body.setAttribute("data-state", "loading");
    say("Loading…");
    getJSON(SUMMARY + "?" + filterQuery().toString())
      .then(function (summary) {
        state.jurisdiction = summary.jurisdiction.jurisdiction_id;
        state.start = summary.window.start_date;
        state.end = summary.window.end_date;
        var wanted = [
          getJSON(API + "/requests.json?" + filterQuery({ extensions: "true" }).toString())
        ];
        if (wardsOf !== state.jurisdiction) {
          var q = new URLSearchParams({ geometry: "true", kind: "ward", jurisdiction_id: state.jurisdiction });
          wanted.push(getJSON(API + "/areas.json?" + q.toString()));
        }
        return Promise.all(wanted).then(function (got) {
          return { summary: summary, requests: got[0], areas: got[1] };
        });
      })
      .then(function (data) {
        if (ticket !== loading) return;
        var summary = data.summary;
        counts = {};
        maxCount = 0;
        summary.by_ward.forEach(function (w) {
          counts[w.code] = w.count;
          maxCount = Math.max(maxCount, w.count);
        });
        if (data.areas) {
          drawWards(data.areas);
          wardsOf = state.jurisdiction;
        } else if (wardLayer) {
          wardLayer.setStyle(wardStyle);
        }
        legend.update(maxCount);
        var drawn = drawPoints(data.requests);
        drawCharts(summary);
        fillControls(summary);
        remember();
        var label = state.status === "all" ? "" : state.status + " ";
        var text = summary.total + " " + label + "requests in " + summary.jurisdiction.name +
          " from " + state.start + " to " + state.end + " · " + drawn + " on the map";
        if (data.requests.length >= summary.max_points && summary.total > data.requests.length) {
          text += " (the newest " + data.requests.length + ")";
        }
        if (summary.outside_wards) text += " · " + summary.outside_wards + " outside the wards";
        say(text);
        document.body.setAttribute("data-state", "ready");
      })
      .catch(function (error) {
        if (ticket !== loading) return;
        say("Could not load the requests: " + error.message, true);
        document.body.setAttribute("data-state", "error");
      });
  }

  ui.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var jurisdiction = ui.jurisdiction.value || state.jurisdiction;
    if (jurisdiction !== state.jurisdiction) {
      state.jurisdiction = jurisdiction;
      state.service = "";
      state.start = "";
      state.end = "";
    } else {
      state.service = ui.service.value;
      state.start = ui.start.value;
      state.end = ui.end.value;
      if (state.start && state.end && state.end < state.start) {
        say("The end date is before the start date.", true);
        return;
      }
    }
    state.status = ui.status.value;
    load();
  });

  ui.jurisdiction.addEventListener("change", function () {
    ui.form.requestSubmit();
  });

  ui.reset.addEventListener("click", function () {
    state.service = "";
    state.status = "open";
    state.start = "";
    state.end = "";
    load();
  });

  load();
})();
