// The offline basemap: country borders (Natural Earth via world-atlas, shipped with the
// package) and a graticule drawn by the page. An online tile server is used only when the
// deployment names one in GET /v1/config.

/* global L, topojson */

const COUNTRIES_URL = "/static/vendor/world-atlas/countries-50m.json";

export async function addBasemap(map, tileUrl) {
  const pane = map.createPane("basemap");
  pane.style.zIndex = 200;
  pane.style.pointerEvents = "none";
  const gratPane = map.createPane("graticule");
  gratPane.style.zIndex = 250;
  gratPane.style.pointerEvents = "none";

  if (tileUrl) {
    L.tileLayer(tileUrl, {
      maxZoom: 18,
      attribution: "Tiles: configured server",
      crossOrigin: true,
    }).addTo(map);
    map.getContainer().classList.add("map-has-tiles");
  }

  addGraticule(map);
  try {
    const response = await fetch(COUNTRIES_URL);
    const topo = await response.json();
    const countries = topojson.feature(topo, topo.objects.countries);
    const borders = topojson.mesh(topo, topo.objects.countries, (a, b) => a !== b);
    const renderer = L.svg({ pane: "basemap", padding: 0.5 });
    if (!tileUrl) {
      L.geoJSON(countries, {
        pane: "basemap",
        renderer,
        interactive: false,
        style: { stroke: false, fill: true, fillColor: "#f4f1ea", fillOpacity: 1 },
      }).addTo(map);
    }
    L.geoJSON(borders, {
      pane: "basemap",
      renderer,
      interactive: false,
      style: { color: tileUrl ? "#5b6472" : "#a59f93", weight: 1, opacity: 0.9, fill: false },
    }).addTo(map);
    // Coastlines: the mesh of each country with itself (exterior arcs only).
    L.geoJSON(
      topojson.mesh(topo, topo.objects.countries, (a, b) => a === b),
      {
        pane: "basemap",
        renderer,
        interactive: false,
        style: { color: "#9fb3c4", weight: 1, opacity: 1, fill: false },
      },
    ).addTo(map);
    map.attributionControl.addAttribution("Borders: Natural Earth");
  } catch (err) {
    console.warn("country borders unavailable", err);
  }
}

/** Lines every 10° at small scales, every 1° (labelled) when zoomed in. */
function addGraticule(map) {
  const coarse = L.layerGroup();
  const fine = L.layerGroup();
  const style = (major) => ({
    pane: "graticule",
    interactive: false,
    color: "#7f93a6",
    weight: major ? 0.8 : 0.5,
    opacity: major ? 0.55 : 0.35,
    dashArray: major ? null : "2 4",
  });
  for (let lon = -180; lon <= 180; lon += 1) {
    const line = L.polyline(
      [
        [-85, lon],
        [85, lon],
      ],
      style(lon % 10 === 0),
    );
    (lon % 10 === 0 ? coarse : fine).addLayer(line);
  }
  for (let lat = -80; lat <= 80; lat += 1) {
    const line = L.polyline(
      [
        [lat, -180],
        [lat, 180],
      ],
      style(lat % 10 === 0),
    );
    (lat % 10 === 0 ? coarse : fine).addLayer(line);
  }
  coarse.addTo(map);
  const update = () => {
    if (map.getZoom() >= 5) fine.addTo(map);
    else fine.remove();
  };
  map.on("zoomend", update);
  update();
}
