-- The tariffs of each station over time (domain/tariff_history.py): a version is written when the bridge starts or
-- reloads with a tariff that differs from the station's latest one. An order is priced by the versions in force
-- during its session, so a reload in the middle of a session prices the time after it by the new tariff, and a
-- rebuilt order (edge-bridge orders repush --rebuild) is priced as it was then. A few rows per year per station.
CREATE TABLE tariff_versions (
    station_id  TEXT NOT NULL,
    since       TEXT NOT NULL,  -- UTC, as every time in this store
    tariff      TEXT NOT NULL,  -- tariff_history.tariff_text: name and periods, prices as decimal strings
    PRIMARY KEY (station_id, since)
) WITHOUT ROWID;
