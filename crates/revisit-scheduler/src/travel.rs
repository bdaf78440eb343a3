//! Travel time between two points, behind one small trait so that a road-network matrix
//! (an OSRM-style table service, answered before the search) can replace the estimate.

use crate::model::{GeoPoint, Policy};

/// Driving time in whole minutes. Implementations must be cheap: the search calls this a few
/// times per technician-day. It need not be symmetric.
pub trait Travel {
    fn minutes(&self, from: GeoPoint, to: GeoPoint) -> u32;
}

/// Great-circle distance x road factor / average speed, rounded up to whole minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GreatCircle {
    pub road_factor: f64,
    pub speed_kmh: f64,
}

impl GreatCircle {
    pub fn from_policy(policy: &Policy) -> Self {
        GreatCircle {
            road_factor: policy.road_factor,
            speed_kmh: policy.speed_kmh,
        }
    }
}

const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Haversine distance in kilometres.
pub fn great_circle_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let half_dlat = (lat2 - lat1) / 2.0;
    let half_dlon = (b.lon - a.lon).to_radians() / 2.0;
    // cos(lat1)cos(lat2) = cos^2(mean) - sin^2(half difference): one cosine instead of two.
    let s_lat = small_sin(half_dlat);
    let c_mean = ((lat1 + lat2) / 2.0).cos();
    let h = s_lat * s_lat + (c_mean * c_mean - s_lat * s_lat) * small_sin(half_dlon).powi(2);
    2.0 * EARTH_RADIUS_KM * small_asin(h.max(0.0).sqrt().min(1.0))
}

/// `sin`, with the Taylor series for the small angles of a service area (exact to f64 precision
/// below 0.01 rad: the first omitted term is under 2e-19). The search calls travel often enough
/// for libm's `sin` to show in profiles.
fn small_sin(x: f64) -> f64 {
    if x.abs() < 0.01 {
        let x2 = x * x;
        x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0))
    } else {
        x.sin()
    }
}

/// `asin`, with the Taylor series below 0.01 (first omitted term under 5e-16 relative).
fn small_asin(x: f64) -> f64 {
    if x < 0.01 {
        let x2 = x * x;
        x * (1.0 + x2 / 6.0 + 3.0 * x2 * x2 / 40.0)
    } else {
        x.asin()
    }
}

impl Travel for GreatCircle {
    fn minutes(&self, from: GeoPoint, to: GeoPoint) -> u32 {
        if from == to {
            return 0;
        }
        let minutes = great_circle_km(from, to) * self.road_factor / self.speed_kmh * 60.0;
        // A bad policy (speed 0, NaN) must not turn into "free travel": `as` saturates, NaN -> 0,
        // so map anything non-finite to the largest value instead.
        if minutes.is_finite() {
            // Round up, but forgive float noise so that an exact 10.0 stays 10.
            (minutes - 1e-9).ceil().max(0.0) as u32
        } else {
            u32::MAX / 4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    #[test]
    fn the_same_point_takes_no_time() {
        let gc = GreatCircle {
            road_factor: 1.3,
            speed_kmh: 40.0,
        };
        assert_eq!(gc.minutes(p(41.9, -87.7), p(41.9, -87.7)), 0);
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let km = great_circle_km(p(41.0, -87.7), p(42.0, -87.7));
        assert!((km - 111.2).abs() < 0.2, "{km}");
    }

    #[test]
    fn minutes_are_distance_times_factor_over_speed_rounded_up() {
        let gc = GreatCircle {
            road_factor: 1.3,
            speed_kmh: 40.0,
        };
        let (a, b) = (p(41.0, -87.7), p(41.1, -87.7));
        let km = great_circle_km(a, b); // ~11.12 km -> 14.45 km road -> 21.7 min
        let exact = km * 1.3 / 40.0 * 60.0;
        assert_eq!(gc.minutes(a, b), exact.ceil() as u32);
        assert_eq!(gc.minutes(a, b), 22);
        assert_eq!(gc.minutes(b, a), 22);
        // A tiny distance still costs a whole minute.
        assert_eq!(gc.minutes(a, p(41.0001, -87.7)), 1);
    }

    #[test]
    fn the_fast_formula_agrees_with_the_textbook_haversine() {
        let textbook = |a: GeoPoint, b: GeoPoint| {
            let (l1, l2) = (a.lat.to_radians(), b.lat.to_radians());
            let h = ((l2 - l1) / 2.0).sin().powi(2)
                + l1.cos() * l2.cos() * ((b.lon - a.lon).to_radians() / 2.0).sin().powi(2);
            2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
        };
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..20_000 {
            let spread = [0.01, 0.5, 5.0, 90.0][i % 4];
            let a = p(next() * 160.0 - 80.0, next() * 340.0 - 170.0);
            let b = p(
                a.lat + (next() - 0.5) * spread,
                a.lon + (next() - 0.5) * spread,
            );
            let (fast, slow) = (great_circle_km(a, b), textbook(a, b));
            assert!(
                (fast - slow).abs() <= 1e-9 * slow.max(1.0),
                "{a:?} {b:?}: {fast} vs {slow}"
            );
        }
    }

    #[test]
    fn a_broken_speed_never_means_free_travel() {
        let gc = GreatCircle {
            road_factor: 1.3,
            speed_kmh: 0.0,
        };
        assert!(gc.minutes(p(41.0, -87.7), p(41.1, -87.7)) > 10_000);
    }
}
