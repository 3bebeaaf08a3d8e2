package server

import "github.com/labstack/echo/v4"

// controlRoutes serves the control API under /control/v1 (filled in by control_api.go).
func (s *Server) controlRoutes(e *echo.Echo) {}
