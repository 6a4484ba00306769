//! The registered local services (client-spec §7.2): a fixed table of names. How a service is
//! reached (a nanomsg PUSH socket, a Rust handler) is the driver's business.

use crate::error::Error;

/// parodus's limits on a registration.
pub const MAX_SERVICE_NAME: usize = 31;
pub const MAX_SERVICE_URL: usize = 99;

pub(crate) struct Services<const N: usize> {
    names: heapless::Vec<heapless::String<MAX_SERVICE_NAME>, N>,
}

impl<const N: usize> Services<N> {
    pub const fn new() -> Self {
        Services {
            names: heapless::Vec::new(),
        }
    }

    /// 1..=31 bytes without `/`; `parodus` is the in-process service and cannot be taken over.
    pub fn check_name(name: &str) -> Result<(), Error> {
        if name.is_empty()
            || name.len() > MAX_SERVICE_NAME
            || name.contains('/')
            || name == "parodus"
        {
            return Err(Error::InvalidServiceName);
        }
        Ok(())
    }

    /// Adds `name`; registering a known name again is fine (parodus replaces its socket).
    pub fn register(&mut self, name: &str) -> Result<(), Error> {
        Self::check_name(name)?;
        if self.contains(name) {
            return Ok(());
        }
        let mut s = heapless::String::new();
        s.push_str(name).map_err(|_| Error::InvalidServiceName)?;
        self.names.push(s).map_err(|_| Error::ServiceTableFull)
    }

    pub fn unregister(&mut self, name: &str) -> bool {
        match self.names.iter().position(|n| n == name) {
            Some(i) => {
                self.names.remove(i);
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(|s| s.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
