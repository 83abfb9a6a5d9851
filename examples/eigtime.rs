use std::time::Instant;
fn main() {
    let n = 512;
    let mut x: u64 = 1;
    let m = faer::Mat::<f64>::from_fn(n, n, |_, _| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.1
    });
    for _ in 0..2 {
        let t = Instant::now();
        let e = m.eigenvalues().unwrap();
        println!("faer eig {:.3}s {}", t.elapsed().as_secs_f64(), e.len());
        let t = Instant::now();
        let s = m.singular_values().unwrap();
        println!("faer svd {:.3}s {}", t.elapsed().as_secs_f64(), s.len());
    }
}
